/**
 * The agent's contract with the controller: the desired-state schema it accepts, the kernel
 * objects it reports and the wire protocol. The controller imports this as `#agent/model`.
 */
export * from './content-hash.js';
export * from './desired-features.js';
export * from './desired-state.js';
export * from './kernel-state.js';
export * from './limits.js';
export * from './line-splitter.js';
export * from './names.js';
export * from './protocol.js';
export * from './routed-prefix.js';
export * from './router-facts.js';
export * from './sysctl-key.js';
