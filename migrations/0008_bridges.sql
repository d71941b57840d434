CREATE TABLE `bridge_cursors` (
	`consumer` text NOT NULL,
	`group_id` text NOT NULL,
	`block_id` integer NOT NULL,
	`position` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`consumer`, `group_id`)
);
--> statement-breakpoint
CREATE TABLE `bridge_exposures` (
	`group_id` text PRIMARY KEY NOT NULL,
	`handle` text NOT NULL,
	`activitypub` integer NOT NULL,
	`nostr` integer NOT NULL,
	`bots` integer NOT NULL,
	`suspended` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `bridge_exposures_handle` ON `bridge_exposures` (`handle`);--> statement-breakpoint
CREATE TABLE `bridge_identities` (
	`network` text NOT NULL,
	`external_id` text NOT NULL,
	`key_name` text NOT NULL,
	`pubkey` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`network`, `external_id`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `bridge_identities_pubkey` ON `bridge_identities` (`pubkey`);--> statement-breakpoint
CREATE TABLE `bridge_origins` (
	`network` text NOT NULL,
	`external_id` text NOT NULL,
	`group_id` text NOT NULL,
	`trx_id` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`network`, `external_id`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `bridge_origins_trx` ON `bridge_origins` (`group_id`,`trx_id`);--> statement-breakpoint
CREATE TABLE `delivery_jobs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`key` text NOT NULL,
	`kind` text NOT NULL,
	`destination` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`max_attempts` integer NOT NULL,
	`run_at` integer NOT NULL,
	`lease_until` integer,
	`last_error` text,
	`created_at` integer NOT NULL,
	`finished_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `delivery_jobs_key` ON `delivery_jobs` (`key`);--> statement-breakpoint
CREATE INDEX `delivery_jobs_status_run_at` ON `delivery_jobs` (`status`,`run_at`);--> statement-breakpoint
CREATE INDEX `delivery_jobs_destination_status` ON `delivery_jobs` (`destination`,`status`);