import {describe, expect, test} from 'vitest'
import {formatEndpoint, formatIp, formatPrefix, parseEndpoint, parseIp, parsePrefix, prefixContains, prefixCovers} from '../../src/model/ip.js'

describe('ip addresses', () => {
  test.each([
    ['10.1.2.3', '10.1.2.3'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::1', '::1'],
    ['::', '::'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
  ])('%s round-trips as %s', (text, printed) => {
    const ip = parseIp(text)
    expect(ip).toBeDefined()
    expect(formatIp(ip!)).toBe(printed)
  })

  test.each(['10.1.2', '10.1.2.256', '1.2.3.4.5', 'a.b.c.d', '1::2::3', '12345::', '', '1.2.3.-1'])('%s is rejected', (text) => {
    expect(parseIp(text)).toBeUndefined()
  })
})

describe('prefixes', () => {
  test('host bits are cleared and dotted masks become lengths', () => {
    expect(formatPrefix(parsePrefix('10.1.2.3/24')!)).toBe('10.1.2.0/24')
    expect(formatPrefix(parsePrefix('10.1.2.3/255.255.0.0')!)).toBe('10.1.0.0/16')
    expect(formatPrefix(parsePrefix('10.1.2.3/32')!)).toBe('10.1.2.3')
    expect(formatPrefix(parsePrefix('2001:db8::5/64')!)).toBe('2001:db8::/64')
  })
  test('non-contiguous masks and over-long lengths are rejected', () => {
    expect(parsePrefix('10.0.0.0/255.0.255.0')).toBeUndefined()
    expect(parsePrefix('10.0.0.0/33')).toBeUndefined()
  })
  test('containment is family-aware', () => {
    const p = parsePrefix('10.0.0.0/8')!
    expect(prefixContains(p, parseIp('10.200.0.1')!)).toBe(true)
    expect(prefixContains(p, parseIp('11.0.0.1')!)).toBe(false)
    expect(prefixContains(parsePrefix('::/0')!, parseIp('10.0.0.1')!)).toBe(false)
    expect(prefixContains(parsePrefix('0.0.0.0/0')!, parseIp('10.0.0.1')!)).toBe(true)
    expect(prefixCovers(p, parsePrefix('10.1.0.0/16')!)).toBe(true)
    expect(prefixCovers(parsePrefix('10.1.0.0/16')!, p)).toBe(false)
  })
})

describe('endpoints', () => {
  test('v4 and bracketed v6', () => {
    expect(formatEndpoint(parseEndpoint('203.0.113.100:80')!)).toBe('203.0.113.100:80')
    expect(formatEndpoint(parseEndpoint('[2001:db8::10]:443')!)).toBe('[2001:db8::10]:443')
    expect(parseEndpoint('2001:db8::10:443')).toBeUndefined()
    expect(parseEndpoint('1.2.3.4:70000')).toBeUndefined()
  })
})
