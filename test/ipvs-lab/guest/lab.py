#!/usr/bin/python3
"""Guest-side helper of the IPVS lab (runs inside the qemu VM, inside one network namespace).

  lab.py server NAME PORT DIR     accept TCP connections on 0.0.0.0:PORT until DIR/stop exists;
                                  per connection: read one line, answer "RESP NAME\n", shut down the
                                  write side (our FIN), wait for the peer's FIN; one JSON line per
                                  connection in DIR/NAME.jsonl; DIR/NAME.ready once listening
  lab.py client NAME FROM HOST:PORT OUT  one exchange from address FROM: connect, send "REQ NAME\n", read the answer line,
                                  wait for the server's FIN, send ours, wait; JSON to OUT
  lab.py snapshot HOST ROLE DIR   the lvsdoctor-snapshot/1 files of this namespace, verbatim
  lab.py finish RES               the same for every host listed in RES/_lab/hosts ("NAME ROLE" lines) into
                                  RES/NAME, entering each namespace with setns(2) (no process start per host),
                                  then RES/outcome.json (as `outcome`)
  lab.py imports                  print the files of every module this script needs (used by the builder)

Timeouts are short on purpose: a scenario whose connection fails costs seconds, not minutes.
"""
import json
import os
import select
import socket
import sys
import time

# imported where needed (each python start costs about a second under TCG): subprocess and ctypes for the
# snapshots, threading for the server

T_CONNECT = 3.0   # SYN + two retransmissions (1 s, then 2 s)
T_READ = 3.0      # answer, and each FIN


TCP_STATES = {1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT',
              7: 'CLOSE', 8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING'}
ACKED_STATES = (5, 6, 7)


def tcp_state(sock):
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0]
    except OSError:
        return 0


def now_ms(t0):
    return round((time.monotonic() - t0) * 1000)


def read_until(sock, pred, timeout):
    """Reads until pred(buf, eof) is true or timeout; returns (buf, eof, error)."""
    buf = b''
    deadline = time.monotonic() + timeout
    while True:
        if pred(buf, False):
            return buf, False, None
        left = deadline - time.monotonic()
        if left <= 0:
            return buf, False, 'timeout'
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return buf, False, 'timeout'
        try:
            chunk = sock.recv(4096)
        except OSError as e:
            return buf, False, e.__class__.__name__ + ': ' + str(e)
        if chunk == b'':
            return buf, True, None
        buf += chunk


def client(name, src, target, out):
    host, port = target.rsplit(':', 1)
    t0 = time.monotonic()
    res = {'client': name, 'from': src, 'target': target, 'handshake': False, 'response': False, 'servedBy': None,
           'sawFin': False, 'local': None, 'events': []}

    def ev(what):
        res['events'].append('%dms %s' % (now_ms(t0), what))

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(T_CONNECT)
    s.bind((src, 0))
    # the address and port bound before connecting: they name the kernel's entries (ipvsadm -Lnc) of an
    # exchange whose connect failed too ('local' stays None then)
    res['bound'] = '%s:%d' % s.getsockname()
    try:
        s.connect((host, int(port)))
        res['handshake'] = True
        res['local'] = '%s:%d' % s.getsockname()
        ev('connected from ' + res['local'])
    except OSError as e:
        ev('connect failed: ' + (e.__class__.__name__ + ': ' + str(e)))
        s.close()
        res['ms'] = now_ms(t0)
        write_json(out, res)
        return
    s.setblocking(True)
    try:
        s.sendall(('REQ %s\n' % name).encode())
        ev('request sent')
    except OSError as e:
        ev('send failed: ' + str(e))
    buf, eof, err = read_until(s, lambda b, _: b'\n' in b, T_READ)
    line = buf.split(b'\n', 1)[0].decode('ascii', 'replace')
    if b'\n' in buf and line.startswith('RESP '):
        res['response'] = True
        res['servedBy'] = line[5:].strip()
        ev('response from ' + res['servedBy'])
        rest = buf.split(b'\n', 1)[1]
        if rest:
            ev('unexpected bytes after the response: %r' % rest[:40])
    else:
        ev('no response (%s, %d bytes%s)' % (err or 'peer closed', len(buf), ', eof' if eof else ''))
    if eof:
        res['sawFin'] = True
        ev('FIN from the server (with the response read)')
    elif res['response']:
        _, eof, err = read_until(s, lambda b, _: False, T_READ)
        if eof:
            res['sawFin'] = True
            ev('FIN from the server')
        else:
            ev('no FIN from the server (%s)' % err)
    try:
        s.shutdown(socket.SHUT_WR)
        ev('our FIN sent')
    except OSError as e:
        ev('shutdown failed: ' + str(e))
    # Was our FIN acknowledged? FIN_WAIT2/TIME_WAIT/CLOSE say yes; FIN_WAIT1/CLOSING/LAST_ACK say not yet.
    deadline = time.monotonic() + 1.0
    while True:
        st = tcp_state(s)
        if st in ACKED_STATES or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    res['finAcked'] = st in ACKED_STATES
    res['finalState'] = TCP_STATES.get(st, str(st))
    ev('our FIN %s (state %s)' % ('acknowledged' if res['finAcked'] else 'not acknowledged', res['finalState']))
    s.close()
    res['ms'] = now_ms(t0)
    write_json(out, res)


def server(name, port, d):
    import threading
    t0 = time.monotonic()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('0.0.0.0', int(port)))
    ls.listen(16)
    lock = threading.Lock()
    out = os.path.join(d, name + '.jsonl')
    open(out, 'w').close()
    open(os.path.join(d, name + '.ready'), 'w').close()
    threads = []

    def handle(c, peer):
        rec = {'server': name, 'peer': '%s:%d' % peer, 'local': '%s:%d' % c.getsockname(), 'request': False,
               'sawFin': False, 'events': []}
        t1 = time.monotonic()

        def ev(what):
            rec['events'].append('%dms %s' % (now_ms(t1), what))

        ev('accepted')
        buf, eof, err = read_until(c, lambda b, _: b'\n' in b, T_READ)
        if b'\n' in buf:
            rec['request'] = True
            ev('request: ' + buf.split(b'\n', 1)[0].decode('ascii', 'replace'))
            try:
                c.sendall(('RESP %s\n' % name).encode())
                c.shutdown(socket.SHUT_WR)
                ev('response and our FIN sent')
            except OSError as e:
                ev('send failed: ' + str(e))
        else:
            ev('no request (%s)' % (err or 'eof'))
        if eof:
            rec['sawFin'] = True
            ev('FIN from the client (before the request was complete)')
        else:
            _, eof, err = read_until(c, lambda b, _: False, T_READ)
            if eof:
                rec['sawFin'] = True
                ev('FIN from the client')
            else:
                ev('no FIN from the client (%s)' % err)
        st = tcp_state(c)
        rec['finAcked'] = st in ACKED_STATES
        rec['finalState'] = TCP_STATES.get(st, str(st))
        c.close()
        with lock:
            with open(out, 'a') as f:
                f.write(json.dumps(rec) + '\n')

    stop = os.path.join(d, 'stop')
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        threads = [t for t in threads if t.is_alive()]
        if os.path.exists(stop) and not threads:
            break
        r, _, _ = select.select([ls], [], [], 0.1)
        if r:
            c, peer = ls.accept()
            t = threading.Thread(target=handle, args=(c, peer), daemon=True)
            t.start()
            threads.append(t)
    ls.close()


SNAPSHOT = [
    ('iptables-save.txt', ['iptables-save']),
    ('ip6tables-save.txt', ['ip6tables-save']),
    ('nft-ruleset.json', ['nft', '-j', 'list', 'ruleset']),
    ('ipvsadm-Sn.txt', ['ipvsadm', '-Sn']),
    ('ipvsadm-Ln.txt', ['ipvsadm', '-Ln', '--stats']),
    ('ipvsadm-Lnc.txt', ['ipvsadm', '-Lnc']),
    ('ip-addr.json', ['ip', '-j', 'addr', 'show']),
    ('ip-route.json', ['ip', '-j', 'route', 'show', 'table', 'all']),
    ('ip-rule.json', ['ip', '-j', 'rule', 'show']),
    # what `lvsdoctor snapshot` runs: the subtrees of the format (its lines are those of `sysctl -a`)
    ('sysctl.txt', ['sysctl', 'net.ipv4', 'net.ipv6.conf', 'net.netfilter']),
    ('conntrack.txt', ['conntrack', '-L']),
    # the listening sockets (`lvsdoctor snapshot` collects them too): trace then knows a realserver that does not
    # listen on the port IPVS sends it (a persistent fwmark service does not translate ports)
    ('ss-ltnu.txt', ['ss', '-Hltnu']),
]


def snapshot(host, role, d):
    import subprocess
    os.makedirs(d, exist_ok=True)
    commands = {}
    for fname, argv in SNAPSHOT:
        t0 = time.monotonic()
        early = os.path.join(os.path.dirname(d), '_lab', '%s.%s' % (host, fname))
        if fname == 'ss-ltnu.txt' and os.path.exists(early):
            # run-scenario.sh ran it before the lab's servers stopped (they would be gone from it by now)
            with open(early, 'rb') as src, open(os.path.join(d, fname), 'wb') as f:
                f.write(src.read())
            commands[fname] = {'argv': argv, 'exitCode': 0, 'durationMs': 0, 'stderr': '',
                               'note': 'taken after the exchanges, before the lab stopped its servers'}
            continue
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
            code, out, err = p.returncode, p.stdout, p.stderr.decode('utf-8', 'replace')
        except (OSError, subprocess.TimeoutExpired) as e:
            code, out, err = None, b'', str(e)
        rec = {'argv': argv, 'exitCode': code, 'durationMs': now_ms(t0), 'stderr': err}
        if code == 0:
            with open(os.path.join(d, fname), 'wb') as f:
                f.write(out)
        else:
            rec['gap'] = '%s failed (exit %s)' % (' '.join(argv), code)
        commands[fname] = rec
    # not part of the snapshot: per-rule counters, to explain what the kernel did (in RES/_lab/)
    try:
        p = subprocess.run(['iptables-save', '-c'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=20)
        with open(os.path.join(os.path.dirname(d), '_lab', host + '.iptables-save-c.txt'), 'wb') as f:
            f.write(p.stdout)
    except (OSError, subprocess.TimeoutExpired):
        pass
    manifest = {'format': 'lvsdoctor-snapshot/1', 'host': host, 'role': role,
                'collectedAt': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'commands': commands,
                'collectedBy': 'test/ipvs-lab (qemu guest, kernel %s)' % os.uname().release}
    write_json(os.path.join(d, 'manifest.json'), manifest)


def outcome(res_dir):
    """Writes RES/outcome.json from the exchange records in RES/_lab and the scenario's LAB_* variables."""
    lab = os.path.join(res_dir, '_lab')
    servers = []
    for f in sorted(os.listdir(lab)):
        if f.endswith('.jsonl'):
            with open(os.path.join(lab, f)) as fh:
                servers += [json.loads(l) for l in fh if l.strip()]
    exchanges = []
    n = 1
    while os.path.exists(os.path.join(lab, 'exchange-%d.json' % n)):
        with open(os.path.join(lab, 'exchange-%d.json' % n)) as fh:
            c = json.load(fh)
        n += 1
        match = None
        if c.get('local'):
            cands = [r for r in servers if r['peer'] == c['local']]
            if not cands:
                # SNAT on the way (MASQUERADE toward the realservers): the server saw another peer address;
                # take the record with the client's source port whose request names this client
                port = c['local'].rsplit(':', 1)[1]
                cands = [r for r in servers if r['peer'].rsplit(':', 1)[1] == port and
                         any(e.endswith('request: REQ ' + c['client']) for e in r['events'])]
            if c.get('servedBy'):
                cands = [r for r in cands if r['server'] == c['servedBy']] or cands
            match = cands[0] if cands else None
        exchanges.append({
            'client': c['client'], 'from': c.get('local') or c['from'] + ':0', 'bound': c.get('bound'),
            'target': c['target'],
            'servedBy': c.get('servedBy') or (match and match['server']),
            'handshake': c['handshake'], 'response': c['response'],
            'clientSawFin': c['sawFin'], 'serverSawFin': bool(match and match['sawFin']),
            'clientFinAcked': bool(c.get('finAcked')), 'serverFinAcked': bool(match and match.get('finAcked')),
            'serverAccepted': match is not None,
            'clientEvents': c['events'], 'serverEvents': match['events'] if match else [],
        })
    hosts = []
    if os.path.exists(os.path.join(lab, 'hosts')):
        with open(os.path.join(lab, 'hosts')) as fh:
            hosts = [dict(zip(('name', 'role'), l.split())) for l in fh if l.strip()]
    errors = []
    if os.path.exists(os.path.join(lab, 'setup-errors.txt')):
        with open(os.path.join(lab, 'setup-errors.txt')) as fh:
            errors = [l.rstrip('\n') for l in fh if l.strip()]
    if not exchanges:
        errors.append('the scenario ran no exchange')
    first = exchanges[0] if exchanges else {}
    keys = ('handshake', 'response', 'clientSawFin', 'serverSawFin', 'clientFinAcked', 'serverFinAcked')
    env = os.environ.get
    out = {
        'scenario': env('LAB_NAME', os.path.basename(res_dir)),
        'title': env('LAB_TITLE', ''), 'source': env('LAB_SOURCE', ''), 'notes': env('LAB_NOTES', ''),
        'flow': {'client': (first.get('from') or ':').rsplit(':', 1)[0], 'service': first.get('target'),
                 'proto': 'tcp'},
    }
    for k in keys:
        out[k] = bool(exchanges) and all(e[k] for e in exchanges)
    out['exchanges'] = exchanges
    out['unmatchedServerConnections'] = [r for r in servers if not any(
        e['from'] == r['peer'] for e in exchanges)]
    out['hosts'] = hosts
    out['setupErrors'] = errors
    out['kernel'] = os.uname().release
    write_json(os.path.join(res_dir, 'outcome.json'), out)


CLONE_NEWNET = 0x40000000


def snapshot_all(res_dir):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    failed = 0
    with open(os.path.join(res_dir, '_lab', 'hosts')) as fh:
        hosts = [l.split() for l in fh if l.strip()]
    for host, role in hosts:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                fd = os.open('/run/netns/' + host, os.O_RDONLY)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), 'setns ' + host)
                os.close(fd)
                snapshot(host, role, os.path.join(res_dir, host))
                code = 0
            except Exception as e:  # reported by the parent through the exit code
                sys.stderr.write('snapshot of %s failed: %s\n' % (host, e))
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failed += 1
    return failed


def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')


def imports():
    # exercise the lazy imports of what we use, then list every module file loaded
    import ctypes
    import subprocess
    import threading
    subprocess.run(['true'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=5)
    json.loads(json.dumps({'a': [1, 'b']}))
    time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    threading.Thread(target=lambda: None).start()
    ctypes.CDLL(None).getpid()
    for m in list(sys.modules.values()):
        f = getattr(m, '__file__', None)
        if f:
            print(os.path.realpath(f))


def main(argv):
    if len(argv) >= 1 and argv[0] == 'imports':
        return imports()
    if len(argv) == 4 and argv[0] == 'server':
        return server(argv[1], argv[2], argv[3])
    if len(argv) == 5 and argv[0] == 'client':
        return client(argv[1], argv[2], argv[3], argv[4])
    if len(argv) == 2 and argv[0] == 'finish':
        failed = snapshot_all(argv[1])
        outcome(argv[1])
        sys.exit(1 if failed else 0)
    if len(argv) == 2 and argv[0] == 'outcome':
        return outcome(argv[1])
    if len(argv) == 4 and argv[0] == 'snapshot':
        return snapshot(argv[1], argv[2], argv[3])
    sys.stderr.write(__doc__)
    sys.exit(2)


if __name__ == '__main__':
    main(sys.argv[1:])
