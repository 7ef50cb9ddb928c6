/** The fleet repository: a bare mirror read at any revision, with optional signature checks. */
export { isFleetFile } from './fleet-tree.js';
export {
  type GitMirrorOptions,
  GitSource,
  type SignatureVerdict,
  type VerifyCommitOptions,
} from './git-source.js';
export { readSignatureStatus } from './signature-status.js';
