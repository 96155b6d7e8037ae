/**
 * The compose file's HAProxy configuration (docker/haproxy/haproxy.cfg), made to run on this
 * machine: every setting as committed, except what only Docker has (its DNS resolver) and where
 * things listen (the binds, the servers' addresses). What the scale-out bench measures is then
 * the configuration operators deploy, not a copy of it that could drift.
 */

export interface LocalHaproxy {
  /** Each frontend's new bind address, by frontend name; every frontend of the file must be named. */
  binds: Record<string, string>;
  /** The backend whose servers are replaced. */
  backend: string;
  /** Its servers, in order: a name and an address each. */
  servers: { name: string; address: string }[];
}

/** Top-level keywords that open a section; every other line belongs to the section above it. */
const SECTION = /^(global|defaults|frontend|backend|listen|resolvers|peers|userlist|mailers|program|http-errors|ring|cache)\b/;

interface Section {
  kind: string;
  name: string;
  lines: string[];
}

function sections(text: string): { head: string[]; sections: Section[] } {
  const head: string[] = [];
  const out: Section[] = [];
  for (const line of text.split('\n')) {
    const m = SECTION.exec(line);
    if (m) out.push({ kind: m[1]!, name: line.trim().split(/\s+/)[1] ?? '', lines: [line] });
    else if (out.length) out[out.length - 1]!.lines.push(line);
    else head.push(line);
  }
  return { head, sections: out };
}

/**
 * The committed configuration with Docker's resolvers left out (the section, and `resolvers <name>`
 * wherever a server or default-server refers to it: 127.0.0.1 addresses need no DNS), each
 * frontend's `bind` moved to `binds[frontend]`, and the backend's `server` lines replaced by one
 * per given server, each keeping the options the first committed server line had after its
 * address. Throws when the file no longer has what is replaced, so a change to it is seen here.
 */
export function localHaproxyConfig(committed: string, local: LocalHaproxy): string {
  const { head, sections: all } = sections(committed);
  const resolvers = all.filter((s) => s.kind === 'resolvers').map((s) => s.name);
  const kept = all.filter((s) => s.kind !== 'resolvers');
  const dropResolvers = (line: string) => resolvers.reduce((l, name) => l.replace(new RegExp(`\\s+resolvers\\s+${name}(?=\\s|$)`), ''), line);

  const frontends = kept.filter((s) => s.kind === 'frontend').map((s) => s.name);
  for (const name of Object.keys(local.binds)) if (!frontends.includes(name)) throw new Error(`haproxy.cfg has no frontend ${name}`);
  for (const name of frontends) if (!(name in local.binds)) throw new Error(`no bind given for haproxy.cfg's frontend ${name}`);
  if (local.servers.length === 0) throw new Error('at least one server');

  let replacedBackend = false;
  const body = kept.map((s) => {
    if (s.kind === 'frontend') {
      const binds = s.lines.filter((l) => /^\s+bind\s/.test(l));
      if (binds.length !== 1) throw new Error(`haproxy.cfg's frontend ${s.name} has ${binds.length} bind lines, not 1`);
      return s.lines.map((l) => (/^\s+bind\s/.test(l) ? l.replace(/^(\s+bind\s+)\S+/, `$1${local.binds[s.name]}`) : l));
    }
    if (s.kind === 'backend' && s.name === local.backend) {
      const at = s.lines.findIndex((l) => /^\s+server\s/.test(l));
      if (at < 0) throw new Error(`haproxy.cfg's backend ${s.name} has no server line`);
      const [, indent, , , options] = /^(\s+)server\s+(\S+)\s+(\S+)(.*)$/.exec(s.lines[at]!)!;
      const servers = local.servers.map((srv) => dropResolvers(`${indent}server ${srv.name} ${srv.address}${options}`));
      const rest = s.lines.filter((l) => !/^\s+server\s/.test(l)).map(dropResolvers);
      replacedBackend = true;
      return [...rest.slice(0, at), ...servers, ...rest.slice(at)];
    }
    return s.lines.map(dropResolvers);
  });
  if (!replacedBackend) throw new Error(`haproxy.cfg has no backend ${local.backend}`);
  return [...head, ...body.flat()].join('\n');
}

/** Per server of `backend`, from the stats page's CSV (`/stats;csv`): its state and its last health check. */
export function serverStates(csv: string, backend: string): { name: string; status: string; check: string }[] {
  const [header, ...rows] = csv.trim().split('\n');
  const cols = (header ?? '').replace(/^#\s*/, '').split(',');
  const col = (name: string) => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`no ${name} column in HAProxy's stats CSV`);
    return i;
  };
  const [px, sv, status, check] = [col('pxname'), col('svname'), col('status'), col('check_status')];
  return rows
    .map((r) => r.split(','))
    .filter((f) => f[px] === backend && f[sv] !== 'FRONTEND' && f[sv] !== 'BACKEND')
    .map((f) => ({ name: f[sv]!, status: f[status]!, check: f[check]! }));
}
