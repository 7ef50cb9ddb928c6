import { describe, expect, it } from 'vitest';
import { agentSocketPath } from './cli.js';
import { DEFAULT_SOCKET_PATH } from './daemon/wire-limits.js';

describe('agentSocketPath (daemon and rpc alike)', () => {
  it('--socket, else $UPLINK_AGENT_SOCKET, else the systemd runtime directory', async () => {
    expect(await agentSocketPath('/tmp/x.sock', { UPLINK_AGENT_SOCKET: '/tmp/env.sock' })).toBe(
      '/tmp/x.sock',
    );
    expect(await agentSocketPath(undefined, { UPLINK_AGENT_SOCKET: '/tmp/env.sock' })).toBe('/tmp/env.sock');
    expect(await agentSocketPath(undefined, {})).toBe(DEFAULT_SOCKET_PATH);
    expect(DEFAULT_SOCKET_PATH).toBe('/run/uplink-agent/agent.sock');
  });
});
