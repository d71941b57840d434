CREATE TABLE `bot_webhook_revoked` (
	`gen` text PRIMARY KEY NOT NULL,
	`bot_id` integer NOT NULL,
	`revoked_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `bot_webhook_revoked_at` ON `bot_webhook_revoked` (`revoked_at`);--> statement-breakpoint
CREATE TABLE `bot_webhooks` (
	`bot_id` integer PRIMARY KEY NOT NULL,
	`gen` text NOT NULL,
	`fingerprint` text NOT NULL,
	`enqueued` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
ALTER TABLE `bot_updates` ADD `webhook_state` integer;