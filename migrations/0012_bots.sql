CREATE TABLE `bot_chats` (
	`chat_id` integer PRIMARY KEY NOT NULL,
	`group_id` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `bot_chats_group_id_unique` ON `bot_chats` (`group_id`);--> statement-breakpoint
CREATE TABLE `bot_groups` (
	`bot_id` integer NOT NULL,
	`group_id` text NOT NULL,
	PRIMARY KEY(`bot_id`, `group_id`)
);
--> statement-breakpoint
CREATE INDEX `bot_groups_group` ON `bot_groups` (`group_id`);--> statement-breakpoint
CREATE TABLE `bot_messages` (
	`chat_id` integer NOT NULL,
	`message_id` integer NOT NULL,
	`trx_id` text NOT NULL,
	PRIMARY KEY(`chat_id`, `message_id`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `bot_messages_trx` ON `bot_messages` (`chat_id`,`trx_id`);--> statement-breakpoint
CREATE TABLE `bot_sends` (
	`bot_id` integer NOT NULL,
	`key` text NOT NULL,
	`trx_id` text,
	`response` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`bot_id`, `key`)
);
--> statement-breakpoint
CREATE INDEX `bot_sends_created` ON `bot_sends` (`created_at`);--> statement-breakpoint
CREATE TABLE `bot_updates` (
	`bot_id` integer NOT NULL,
	`update_id` integer NOT NULL,
	`kind` text NOT NULL,
	`group_id` text NOT NULL,
	`trx_id` text NOT NULL,
	`payload` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`bot_id`, `update_id`)
);
--> statement-breakpoint
CREATE INDEX `bot_updates_trx` ON `bot_updates` (`bot_id`,`trx_id`);--> statement-breakpoint
CREATE INDEX `bot_updates_created` ON `bot_updates` (`created_at`);--> statement-breakpoint
CREATE TABLE `bot_users` (
	`user_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`pubkey` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `bot_users_pubkey_unique` ON `bot_users` (`pubkey`);--> statement-breakpoint
CREATE TABLE `bots` (
	`bot_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`scopes` text NOT NULL,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	`acked` integer DEFAULT 0 NOT NULL,
	`webhook_url` text,
	`webhook_kind` text,
	`webhook_secret` text,
	`webhook_max_connections` integer,
	`allowed_updates` text,
	`webhook_disabled` text,
	`last_error_at` integer,
	`last_error_message` text
);
