ALTER TABLE `contents` ADD `position` integer;--> statement-breakpoint
UPDATE `contents` SET `position` = (SELECT `trxs`.`position` FROM `trxs` WHERE `trxs`.`group_id` = `contents`.`group_id` AND `trxs`.`trx_id` = `contents`.`trx_id`);--> statement-breakpoint
DROP INDEX `contents_group_trx`;--> statement-breakpoint
CREATE UNIQUE INDEX `contents_group_block_position` ON `contents` (`group_id`,`block_id`,`position`);
