CREATE TABLE `nostr_events` (
	`seq` integer PRIMARY KEY NOT NULL,
	`id` text NOT NULL,
	`pubkey` text NOT NULL,
	`created_at` integer NOT NULL,
	`kind` integer NOT NULL,
	`tags` text NOT NULL,
	`content` text NOT NULL,
	`sig` text NOT NULL,
	`d_tag` text,
	`expires_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `nostr_events_id` ON `nostr_events` (`id`);--> statement-breakpoint
CREATE INDEX `nostr_events_created` ON `nostr_events` (`created_at`);--> statement-breakpoint
CREATE INDEX `nostr_events_kind` ON `nostr_events` (`kind`,`created_at`);--> statement-breakpoint
CREATE INDEX `nostr_events_pubkey` ON `nostr_events` (`pubkey`,`created_at`);--> statement-breakpoint
CREATE INDEX `nostr_events_pubkey_kind` ON `nostr_events` (`pubkey`,`kind`,`created_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `nostr_events_replace` ON `nostr_events` (`pubkey`,`kind`,`d_tag`) WHERE "nostr_events"."d_tag" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `nostr_events_expires` ON `nostr_events` (`expires_at`) WHERE "nostr_events"."expires_at" IS NOT NULL;--> statement-breakpoint
CREATE TABLE `nostr_tags` (
	`event_seq` integer NOT NULL,
	`name` text NOT NULL,
	`value` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`name`, `value`, `created_at`, `event_seq`),
	FOREIGN KEY (`event_seq`) REFERENCES `nostr_events`(`seq`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `nostr_tags_event` ON `nostr_tags` (`event_seq`);--> statement-breakpoint
CREATE TABLE `nostr_tombstones` (
	`target` text NOT NULL,
	`pubkey` text NOT NULL,
	`until` integer NOT NULL,
	PRIMARY KEY(`target`, `pubkey`)
);
