import { describe, expect, it } from 'vitest';
import { terminalSafe } from '../../astro-multi-tenant/server/cli/terminal-text.ts';

describe('terminalSafe: tenant text printed on a terminal', () => {
  it.each([
    ['a colour sequence', 'Acme \u001b[31mred', 'Acme \\x1b[31mred'],
    ['a screen clear', '\u001b[2J\u001b[H', '\\x1b[2J\\x1b[H'],
    ['an OSC title change ended by BEL', '\u001b]0;owned\u0007', '\\x1b]0;owned\\x07'],
    ['an OSC 8 hyperlink', '\u001b]8;;https://evil.example\u001b\\\\click\u001b]8;;\u001b\\\\', '\\x1b]8;;https://evil.example\\x1b\\\\click\\x1b]8;;\\x1b\\\\'],
    ['a one-byte C1 CSI', 'x\u009b31my', 'x\\x9b31my'],
    ['a forged report line', 'site\nok    acme (3 pages)', 'site\\x0aok    acme (3 pages)'],
    ['a carriage return that overwrites the line', 'FAIL\rok  ', 'FAIL\\x0dok  '],
    ['DEL and NUL', 'a\u007fb\u0000c', 'a\\x7fb\\x00c'],
    ['a right-to-left override (Trojan Source)', 'admin\u202e\u2066txt.exe', 'admin\\u202e\\u2066txt.exe'],
  ])('escapes %s', (_kind, input, expected) => {
    expect(terminalSafe(input)).toBe(expected);
    expect(terminalSafe(input)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  });

  it.each(['Acme Tools', 'Sweet Crumbs Bäckerei ☕', 'sites/acme/pages/über-uns.md: frontmatter.title: must not be empty', '日本語のサイト', 'quote " and backslash \\'])('leaves printable text as it is: %s', (text) => {
    expect(terminalSafe(text)).toBe(text);
  });
});
