ALTER TABLE `producer_votes` ADD `locked_round` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `producer_votes` ADD `promised_round` integer DEFAULT 0 NOT NULL;