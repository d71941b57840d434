CREATE TABLE `bridge_kv` (
	`bridge` text NOT NULL,
	`key` text NOT NULL,
	`value` text NOT NULL,
	`expires_at` integer,
	PRIMARY KEY(`bridge`, `key`)
);
--> statement-breakpoint
CREATE INDEX `bridge_kv_expires` ON `bridge_kv` (`expires_at`);