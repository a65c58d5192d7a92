# OUT=dir SEED=n PER=k python3 bench/diff-check/mutate-fixtures.py
# Mutated copies of every fixtures/rules case: the hosts' iptables-save.txt get rules deleted, duplicated,
# moved, borrowed from other fixtures, or with addresses/ports/targets changed.
import os, random, shutil, glob, re
random.seed(int(os.environ.get('SEED', '1')))
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'fixtures', 'rules')
out = os.environ.get('OUT', '/tmp/ldi-diff/fixture-cases')
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
pool = []
for f in glob.glob(root + '/*/*/iptables-save.txt'):
    cur = None
    for l in open(f):
        l = l.rstrip('\n')
        if l.startswith('*'): cur = l[1:]
        if l.startswith('-A '): pool.append((cur, l))
addrs = ['10.0.0.1', '10.0.0.2', '192.168.1.10', '198.51.100.100', '203.0.113.10', '127.0.0.1', '10.1.0.0/16', '0.0.0.0/0', '172.16.0.5']
ports = ['80', '443', '8080', '22', '3306', '1:1024']
cases = sorted(glob.glob(root + '/*/'))
n = 0
for c in cases:
    for k in range(int(os.environ.get('PER', '4'))):
        dst = f'{out}/{n:04d}-{os.path.basename(c.rstrip("/"))}'
        shutil.copytree(c, dst)
        os.remove(dst + '/expected.json') if os.path.exists(dst + '/expected.json') else None
        for ipt in glob.glob(dst + '/*/iptables-save.txt'):
            L = open(ipt).read().split('\n')
            for m in range(random.randint(1, 4)):
                idx = [i for i, l in enumerate(L) if l.startswith('-A ')]
                op = random.randrange(6)
                if op == 0 and idx: del L[random.choice(idx)]
                elif op == 1 and idx:
                    i = random.choice(idx); L.insert(random.choice(idx), L[i])
                elif op == 2:
                    # borrow a rule for a table present here, into a builtin chain of that table
                    tables = [l[1:] for l in L if l.startswith('*')]
                    cand = [p for p in pool if p[0] in tables]
                    if not cand: continue
                    t, rule = random.choice(cand)
                    chains = [l.split()[0][1:] for l in L if l.startswith(':')]
                    ti = L.index('*' + t)
                    ci = next(i for i in range(ti, len(L)) if L[i] == 'COMMIT')
                    tchains = [l.split()[0][1:] for l in L[ti:ci] if l.startswith(':')]
                    ch = rule.split()[1]
                    if ch not in tchains:
                        continue
                    # jumps to chains missing here would be a load error in both: keep only known targets
                    m2 = re.search(r' -[jg] (\S+)', rule)
                    if m2 and m2.group(1).isupper() and m2.group(1) not in tchains and m2.group(1) not in ('ACCEPT','DROP','RETURN','REJECT','DNAT','SNAT','MASQUERADE','REDIRECT','MARK','CONNMARK','LOG','CT','NOTRACK','TRACE','QUEUE'):
                        continue
                    L.insert(random.randint(ti + 1 + len(tchains), ci), rule)
                elif op == 3 and idx:
                    i = random.choice(idx)
                    L[i] = re.sub(r'\b\d+\.\d+\.\d+\.\d+(/\d+)?\b', lambda _: random.choice(addrs), L[i], count=1)
                elif op == 4 and idx:
                    i = random.choice(idx)
                    L[i] = re.sub(r'--dport \S+', lambda _: '--dport ' + random.choice(ports), L[i])
                elif op == 5 and idx:
                    i = random.choice(idx)
                    L[i] = re.sub(r' -j (ACCEPT|DROP)$', lambda m: ' -j ' + ('DROP' if m.group(1) == 'ACCEPT' else 'ACCEPT'), L[i])
            open(ipt, 'w').write('\n'.join(L))
        n += 1
print(n)
