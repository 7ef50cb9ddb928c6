import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateEd25519KeyPair, generateSimKeys, simKeysFromText, simKeysToText } from './sim-keys.js';

const { utils } = ssh2;

describe('generateEd25519KeyPair', () => {
  it('hands out only keys ssh2 parses back, over enough draws to meet its 1-in-256 bad key', () => {
    // 3,000 draws of ssh2's bare generator hit a truncated key with probability 1 - (255/256)^3000 ≈ 1 - 1e-5.
    for (let i = 0; i < 3_000; i++) {
      const pair = generateEd25519KeyPair();
      expect(utils.parseKey(pair.private)).not.toBeInstanceOf(Error);
      expect(utils.parseKey(pair.public)).not.toBeInstanceOf(Error);
    }
  });

  it('throws a draw away when ssh2 cannot read it and draws again', () => {
    const good = utils.generateKeyPairSync('ed25519');
    const draws = [{ private: 'not a key', public: good.public }, good];
    const pair = generateEd25519KeyPair(() => draws.shift()!);
    expect(pair.private).toBe(good.private);
    expect(draws).toHaveLength(0);
  });

  it('gives up with a clear error when every draw is unreadable', () => {
    expect(() => generateEd25519KeyPair(() => ({ private: 'x', public: 'y' }))).toThrow(
      /generated 32 unparsable ed25519 keys in a row/,
    );
  });
});

describe('generateSimKeys', () => {
  it('gives the host key line in the form management.hostKey takes', () => {
    const keys = generateSimKeys();
    expect(keys.hostKeyLine).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    expect(utils.parseKey(keys.hostPrivateKey)).not.toBeInstanceOf(Error);
  });
});

describe('simKeysToText / simKeysFromText', () => {
  it('hands a shard the same keys: the controller key it accepts verifies a signature of the real private key', () => {
    const keys = generateSimKeys();
    const back = simKeysFromText(simKeysToText(keys));
    expect(back.hostPrivateKey).toBe(keys.hostPrivateKey);
    expect(back.hostKeyLine).toBe(keys.hostKeyLine);
    expect(back.controllerPrivateKey).toBe(keys.controllerPrivateKey);
    const signer = utils.parseKey(keys.controllerPrivateKey);
    if (signer instanceof Error) throw signer;
    const data = Buffer.from('session data');
    expect(back.controllerPublicKey.verify(data, signer.sign(data))).toBe(true);
    // Another controller's signature is not accepted.
    const other = utils.parseKey(generateSimKeys().controllerPrivateKey);
    if (other instanceof Error) throw other;
    expect(back.controllerPublicKey.verify(data, other.sign(data))).toBe(false);
  });

  it('refuses text without a key', () => {
    const { controllerPublicKeyLine: _line, ...rest } = JSON.parse(simKeysToText(generateSimKeys()));
    expect(() => simKeysFromText(JSON.stringify(rest))).toThrow(/controllerPublicKeyLine is missing/);
  });
});
