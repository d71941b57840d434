/** The node version, reported as quorum reports its own (node_version, trx Version is separate). */
export const NODE_VERSION = '2.0.0';
