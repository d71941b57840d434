CREATE TABLE `producers` (
	`group_id` text NOT NULL,
	`producer_pubkey` text NOT NULL,
	`owner_sign` text NOT NULL,
	`memo` text NOT NULL,
	`timestamp` text NOT NULL,
	PRIMARY KEY(`group_id`, `producer_pubkey`)
);
--> statement-breakpoint
ALTER TABLE `blocks` ADD `witnesses` blob;