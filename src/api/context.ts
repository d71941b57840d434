/**
 * What the API's route modules are given: the node and the token service. Its own module so that
 * a route imports neither server.ts nor another route's registration.
 */
import type { Gateway } from '../gateway/gateway.ts';
import type { RumNode } from '../node.ts';
import type { TokenService } from './tokens.ts';

export interface ApiComponents {
  node: RumNode;
  tokens: TokenService;
  /** The public listener and the bridges' queue; absent where the API runs without them. */
  gateway?: Gateway;
}
