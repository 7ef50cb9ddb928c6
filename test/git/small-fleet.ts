/**
 * Fleet repository files for controller tests: `n` small sites (one uplink each), the
 * first labelled canary, and a rollout plan with a canary wave, a count wave and the rest.
 * `version` changes every site's desired state (an SMTP policy's port), so each version is
 * a new content hash per site.
 */
export interface SmallFleetOptions {
  readonly sites: readonly { readonly name: string; readonly address: string; readonly hostKey: string }[];
  readonly version: number;
  readonly bake?: string;
  readonly rollbackOnFailure?: boolean;
  /** Extra policy YAML for one site (e.g. one that cuts its management path). */
  readonly extraPolicy?: { readonly site: string; readonly yaml: string };
}

export function smallFleetFiles(options: SmallFleetOptions): Record<string, string> {
  const files: Record<string, string> = {
    'fleet.yaml': `rollout:
  confirmWithin: 10s
  siteTimeout: 60s
  rollbackOnFailure: ${options.rollbackOnFailure ? 'true' : 'false'}
  waves:
    - name: canary
      select: { labels: { canary: "true" } }
      concurrency: 1
      bake: ${options.bake ?? '0s'}
    - name: early
      count: 2
      concurrency: 2
      bake: ${options.bake ?? '0s'}
    - name: rest
      concurrency: 8
`,
  };
  options.sites.forEach((site, i) => {
    const extra = options.extraPolicy?.site === site.name ? options.extraPolicy.yaml : '';
    files[`sites/${site.name}.yaml`] = `name: ${site.name}
labels: { canary: "${i === 0 ? 'true' : 'false'}" }
management:
  address: ${site.address}
  user: root
  hostKey: ${site.hostKey}
providers:
  - name: isp1
    interface: isp1
    address: 198.51.100.2/29
    gateway: 198.51.100.1
    health: { enabled: false }
policies:
  - name: smtp
    proto: tcp
    dport: ${2500 + options.version}
    via: [isp1]
${extra}`;
  });
  return files;
}

/** A fleet file set with one validation error (an unknown provider in `via`). */
export function brokenSite(name: string): Record<string, string> {
  return {
    [`sites/${name}.yaml`]: `name: ${name}
management:
  address: 192.0.2.250
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClCAdEERgnqBDzVhMqPG0LAf3+DKdSb5Eq9Z+ShyIxQ
providers:
  - name: isp1
    interface: isp1
    gateway: 198.51.100.1
policies:
  - name: smtp
    via: [nope]
`,
  };
}
