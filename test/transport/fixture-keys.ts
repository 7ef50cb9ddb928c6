/**
 * Public keys made once with ssh-keygen for unit tests (no private keys are kept), with the
 * fingerprints `ssh-keygen -lf` printed and a known_hosts file hashed by `ssh-keygen -H`, so
 * the parsers are checked against OpenSSH's own output.
 */
export const ED25519_LINE =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL1XsBBn1O/ZpAPZ0DxxEYlPgWO3XCBh9vvP2EMpcCxQ fixture-ed';
export const ED25519_FINGERPRINT = 'SHA256:lL6hSEBsMW+AD3sreuJC/CHZ34hOhARU7XTJ9I7kc58';

export const ECDSA_LINE =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMJGar3b/xOwKj3Muwj6ScrjT8o0cvj7vzD/Meuf0VDS9Yq3XsAw/pBxJKfSG1/+Tx4/x38X9aJb1/xhgqFKCxM= fixture-ec';
export const ECDSA_FINGERPRINT = 'SHA256:b+kgf8A/5Ri/vv+XfeS4aaRa+jgkJIuLedFtnLkQWMQ';

export const RSA_LINE =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCgyRp4EawvtkLFYiOEmA39xH3FxXW/jTuhYS3aia3Cl1c+dC0NVxdNekg1cfymxOLQgizJftXLI/pUVAeBMxHjulQfoOabKNDUygj+OQ958SBKQjLN6VYZRGJRzM17DafmJvqmCMPocpPK6TPUNr2mMi6weoDjvLc/QUCxOTOD/zdYokGMPReoE3w4K1Wf2zDyPfJVw9wCbD0motej7Rzn2/5EVHL69SKnvgOJJGTmKbO9NAx8AKLMKXiDbScEyblk5+IVAUvgJy1wgmlAJ0TthQjb3ynFRelz/SM40JL0r53KuYwW/OoWjylswWzyP1Jjqf2i4CQGtZdm/YnBxKmF fixture-rsa';
export const RSA_FINGERPRINT = 'SHA256:1CQJTfaWhT0muoO9sv2CfwqtGryAhCVKbWfoInJf5pA';

/** `router1.example.net` → ED25519 key, `[192.0.2.10]:2222` → ECDSA key, hashed by `ssh-keygen -H`. */
export const HASHED_KNOWN_HOSTS = [
  '|1|5HtWJ/9v9wVVOyHryuD3/FMrfdk=|93Dmq311hRedgrKgOIy/+iwuyU8= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL1XsBBn1O/ZpAPZ0DxxEYlPgWO3XCBh9vvP2EMpcCxQ',
  '|1|S7jhKFQq8nKlCEbuX2yKf4D6/jU=|t3yfj4LVJCCTgcBH6Ao630B22zE= ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMJGar3b/xOwKj3Muwj6ScrjT8o0cvj7vzD/Meuf0VDS9Yq3XsAw/pBxJKfSG1/+Tx4/x38X9aJb1/xhgqFKCxM=',
  '',
].join('\n');

/** The base64 blob of a key line. */
export function blobOf(line: string): Buffer {
  return Buffer.from(line.split(' ')[1]!, 'base64');
}
