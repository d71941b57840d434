CREATE TABLE `api_tokens` (
	`token` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`group_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`revoked` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `app_configs` (
	`group_id` text NOT NULL,
	`name` text NOT NULL,
	`type` integer NOT NULL,
	`value` text NOT NULL,
	`owner_pubkey` text NOT NULL,
	`owner_sign` text NOT NULL,
	`memo` text NOT NULL,
	`timestamp` text NOT NULL,
	PRIMARY KEY(`group_id`, `name`)
);
--> statement-breakpoint
CREATE TABLE `blocks` (
	`group_id` text NOT NULL,
	`block_id` integer NOT NULL,
	`epoch` integer NOT NULL,
	`prev_hash` blob NOT NULL,
	`producer_pubkey` text NOT NULL,
	`sudo` integer NOT NULL,
	`timestamp` text NOT NULL,
	`block_hash` blob NOT NULL,
	`producer_sign` blob NOT NULL,
	`trx_count` integer NOT NULL,
	PRIMARY KEY(`group_id`, `block_id`)
);
--> statement-breakpoint
CREATE TABLE `contents` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`group_id` text NOT NULL,
	`trx_id` text NOT NULL,
	`sender_pubkey` text NOT NULL,
	`timestamp` text NOT NULL,
	`block_id` integer NOT NULL,
	`data` blob,
	`object_type` text,
	`in_reply_to` text,
	`deleted` integer DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `contents_group_trx` ON `contents` (`group_id`,`trx_id`);--> statement-breakpoint
CREATE INDEX `contents_group_seq` ON `contents` (`group_id`,`seq`);--> statement-breakpoint
CREATE INDEX `contents_group_sender_seq` ON `contents` (`group_id`,`sender_pubkey`,`seq`);--> statement-breakpoint
CREATE TABLE `groups` (
	`group_id` text PRIMARY KEY NOT NULL,
	`group_name` text NOT NULL,
	`owner_pubkey` text NOT NULL,
	`user_pubkey` text NOT NULL,
	`user_encrypt_pubkey` text DEFAULT '' NOT NULL,
	`consensus_type` integer NOT NULL,
	`encryption_type` integer NOT NULL,
	`cipher_key` text NOT NULL,
	`app_key` text NOT NULL,
	`genesis` blob NOT NULL,
	`top_block_id` integer DEFAULT 0 NOT NULL,
	`top_block_hash` blob NOT NULL,
	`current_epoch` integer DEFAULT 0 NOT NULL,
	`last_updated` text NOT NULL,
	`joined_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `pending_trxs` (
	`group_id` text NOT NULL,
	`trx_id` text NOT NULL,
	`raw` blob NOT NULL,
	`received_at` integer NOT NULL,
	PRIMARY KEY(`group_id`, `trx_id`)
);
--> statement-breakpoint
CREATE TABLE `trx_auth_modes` (
	`group_id` text NOT NULL,
	`trx_type` integer NOT NULL,
	`mode` integer NOT NULL,
	PRIMARY KEY(`group_id`, `trx_type`)
);
--> statement-breakpoint
CREATE TABLE `trx_rules` (
	`group_id` text NOT NULL,
	`list` integer NOT NULL,
	`pubkey` text NOT NULL,
	`trx_types` text NOT NULL,
	`owner_pubkey` text NOT NULL,
	`owner_sign` text NOT NULL,
	`timestamp` text NOT NULL,
	`memo` text NOT NULL,
	PRIMARY KEY(`group_id`, `list`, `pubkey`)
);
--> statement-breakpoint
CREATE TABLE `trxs` (
	`group_id` text NOT NULL,
	`trx_id` text NOT NULL,
	`block_id` integer NOT NULL,
	`position` integer NOT NULL,
	`type` integer NOT NULL,
	`sender_pubkey` text NOT NULL,
	`timestamp` text NOT NULL,
	`raw` blob NOT NULL,
	PRIMARY KEY(`group_id`, `trx_id`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `trxs_block_position` ON `trxs` (`group_id`,`block_id`,`position`);