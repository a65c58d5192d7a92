// keepalived.conf health checkers of a real_server: where each one connects (connect_ip/connect_port, else the real
// server: no checker has a default port of its own), and from where (bindto).
import {expect, test} from 'vitest'
import {formatIp} from '../../src/model/ip.js'
import {parseKeepalived} from '../../src/snapshot/parsers/keepalived.js'

const conf = `virtual_server 192.0.2.100 80 {
  lb_algo wlc
  lb_kind DR
  protocol TCP
  real_server 192.0.2.11 80 {
    weight 1
    HTTP_GET {
      url {
        path /health
        status_code 200
      }
      connect_port 8080
      connect_timeout 3
    }
  }
  real_server 192.0.2.12 80 {
    TCP_CHECK {
      connect_ip 10.0.0.12
      bindto 10.0.0.1
    }
    MISC_CHECK {
      misc_path "/usr/local/bin/check.sh"
    }
  }
  real_server 192.0.2.13 {
    SMTP_CHECK {
    }
  }
}
`

test('checkers: target address and port, source, and the checkers that connect to no port', () => {
  const svc = parseKeepalived(conf, 'keepalived.conf').services[0]!
  const checks = svc.dests.map((d) => (d.checks ?? []).map((c) => `${c.kind} ${formatIp(c.ip)}:${c.port ?? '-'}${c.bindto ? ` from ${formatIp(c.bindto)}` : ''} @${c.loc.line}`))
  expect(checks).toEqual([['HTTP_GET 192.0.2.11:8080 @7'], ['TCP_CHECK 10.0.0.12:80 from 10.0.0.1 @17', 'MISC_CHECK 192.0.2.12:- @21'], ['SMTP_CHECK 192.0.2.13:- @26']])
})

test('a real_server without checkers has none', () => {
  const svc = parseKeepalived('virtual_server 192.0.2.100 80 {\n  protocol TCP\n  real_server 192.0.2.11 80 {\n    weight 1\n  }\n}\n', 'keepalived.conf').services[0]!
  expect(svc.dests[0]!.checks).toBeUndefined()
})
