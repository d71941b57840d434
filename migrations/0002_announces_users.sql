CREATE TABLE `announces` (
	`group_id` text NOT NULL,
	`sign_pubkey` text NOT NULL,
	`type` integer NOT NULL,
	`encrypt_pubkey` text NOT NULL,
	`announcer_sign` text NOT NULL,
	`result` integer NOT NULL,
	`memo` text NOT NULL,
	`timestamp` text NOT NULL,
	PRIMARY KEY(`group_id`, `type`, `sign_pubkey`)
);
--> statement-breakpoint
CREATE TABLE `group_users` (
	`group_id` text NOT NULL,
	`user_pubkey` text NOT NULL,
	`encrypt_pubkey` text NOT NULL,
	`owner_sign` text NOT NULL,
	`memo` text NOT NULL,
	`timestamp` text NOT NULL,
	PRIMARY KEY(`group_id`, `user_pubkey`)
);
