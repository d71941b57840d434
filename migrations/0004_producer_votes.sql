CREATE TABLE `producer_votes` (
	`group_id` text NOT NULL,
	`block_id` integer NOT NULL,
	`block_hash` text NOT NULL,
	PRIMARY KEY(`group_id`, `block_id`)
);
