CREATE TABLE `bot_outcomes` (
	`bot_id` integer NOT NULL,
	`trx_id` text NOT NULL,
	`group_id` text NOT NULL,
	`sent_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`settled_at` integer,
	`status` text,
	`reason` text,
	PRIMARY KEY(`bot_id`, `trx_id`)
);
--> statement-breakpoint
CREATE INDEX `bot_outcomes_open` ON `bot_outcomes` (`settled_at`);--> statement-breakpoint
ALTER TABLE `bots` ADD `redis_streams` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `bots` ADD `redis_pushed` integer DEFAULT 0 NOT NULL;