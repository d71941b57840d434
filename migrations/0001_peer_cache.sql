CREATE TABLE `peer_cache` (
	`peer_id` text PRIMARY KEY NOT NULL,
	`addrs` text NOT NULL,
	`last_seen` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `peer_cache_last_seen` ON `peer_cache` (`last_seen`);