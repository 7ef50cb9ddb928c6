/**
 * Name rules the agent enforces, each defined once (D89): the desired-state schema, the
 * controller's spec schema and its messages all use these.
 */

/**
 * A Linux interface name: at most 15 bytes (IFNAMSIZ − 1), no `/`, whitespace or `:`, and
 * not `.` or `..` (the kernel's dev_valid_name), nor `all` or `default` (the kernel refuses
 * them: they are the sysctl directories net/ipv4/conf/all and …/default). Dots, dashes and
 * `@` are allowed: VLANs (`enp1s0.100`), bridges (`br-lan.20`), LTE modems (`enp0s20f0u1`).
 */
export const INTERFACE_NAME_PATTERN = /^(?!(?:all|default)$)[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/;
export const INTERFACE_NAME_RULE =
  'a Linux interface name: 1–15 characters from A–Z a–z 0–9 _ . @ - (no "/", spaces or shell characters; not "all" or "default")';

/** Providers, policies, groups and waves. */
export const OBJECT_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,30}$/;
export const OBJECT_NAME_RULE =
  'a name of 1–31 characters: lower-case letters, digits, "_" or "-", starting with a letter';

export const SITE_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
export const SITE_NAME_RULE = 'a site name of 1–63 characters: lower-case letters, digits, ".", "_" or "-"';
