// `ip -j addr show` / `ip -j route show table all` of a host with loopback and one Ethernet interface (eth0), as
// iproute2 prints them: for dataplane tests that build small hosts in memory.

/** lo (127.0.0.1/8) and eth0 with `ip`/`len` */
export function addrJson(ip: string, len = 24): string {
  return JSON.stringify([
    {ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, operstate: 'UNKNOWN', link_type: 'loopback', addr_info: [{family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo'}]},
    {ifindex: 2, ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', link_type: 'ether', addr_info: [{family: 'inet', local: ip, prefixlen: len, scope: 'global', label: 'eth0'}]},
  ])
}

/** `extra` routes first, then the default via `gw`, the connected /24 of `ip` and the kernel's local routes */
export function routeJson(ip: string, gw: string, extra: readonly object[] = []): string {
  const net = `${ip.split('.').slice(0, 3).join('.')}.0/24`
  return JSON.stringify([
    ...extra,
    {dst: 'default', gateway: gw, dev: 'eth0', flags: []},
    {dst: net, dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: ip, flags: []},
    {type: 'local', dst: ip, dev: 'eth0', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: ip, flags: []},
    {type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '127.0.0.1', flags: []},
  ])
}
