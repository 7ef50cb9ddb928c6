/** The agent's version as reported by `hello` and `status` (= package.json; a test keeps them equal). */
export const AGENT_VERSION = '0.1.0';
export const AGENT_NAME = `uplink-agent/${AGENT_VERSION}`;
