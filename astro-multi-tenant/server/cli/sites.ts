import { mkdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../config.ts';
import { checkSites, formatReport } from '../sites/check.ts';
import { isValidSiteId } from '../tenant/resolve-host.ts';
import { normalizeHost } from '../tenant/normalize-host.ts';

const USAGE = `usage: npm run sites -- <command>

  check                 validate every site folder; exits 1 if any has errors
  list                  list sites with their domains and aliases
  new <id> [--domain d] scaffold sites/<id>/ (site.json, pages/index.md, public/)
`;

const config = loadConfig();
const [command, ...args] = process.argv.slice(2).filter((a) => a !== '--');

async function main(): Promise<number> {
  switch (command) {
    case 'check': {
      const reports = await checkSites(config.sitesDir);
      console.log(formatReport(reports));
      const failed = reports.filter((r) => r.issues.length > 0).length;
      console.log(`\n${reports.length} site(s) checked, ${failed} with errors`);
      return failed ? 1 : 0;
    }
    case 'list': {
      const reports = await checkSites(config.sitesDir);
      for (const r of reports) {
        const hosts = r.config ? [...r.config.domains, `${r.id}.${config.platformDomain}`].join(', ') : '(invalid site.json)';
        const aliases = r.config?.aliases.length ? `  aliases: ${r.config.aliases.join(', ')}` : '';
        console.log(`${r.id.padEnd(24)} ${r.config?.name ?? ''}\n${' '.repeat(25)}${hosts}${aliases}`);
      }
      return 0;
    }
    case 'new': {
      const id = args[0];
      if (!id || !isValidSiteId(id)) {
        console.error(`sites new: "${id ?? ''}" is not a valid site id (lowercase letters, digits, hyphens; 1-63 characters)`);
        return 2;
      }
      const domainIndex = args.indexOf('--domain');
      const domains: string[] = [];
      if (domainIndex !== -1) {
        const raw = args[domainIndex + 1] ?? '';
        try {
          domains.push(normalizeHost(raw).hostname);
        } catch (error) {
          console.error(`sites new: --domain "${raw}": ${(error as Error).message}`);
          return 2;
        }
      }
      const dir = join(config.sitesDir, id);
      if (await access(dir).then(() => true, () => false)) {
        console.error(`sites new: ${dir} already exists; nothing was changed`);
        return 1;
      }
      await mkdir(join(dir, 'pages'), { recursive: true });
      await mkdir(join(dir, 'public'), { recursive: true });
      const name = id.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ');
      await writeFile(join(dir, 'site.json'), JSON.stringify({ name, description: '', domains, aliases: [], locale: 'en', layout: 'page', nav: [{ label: 'Home', href: '/' }] }, null, 2) + '\n');
      await writeFile(join(dir, 'pages', 'index.md'), `---\ntitle: ${name}\ndescription: Welcome to ${name}.\n---\n\nEdit \`sites/${id}/pages/index.md\` and reload: the change is live within a second.\n`);
      console.log(`created ${dir}\nlive at http://${id}.${config.platformDomain}${config.port === 80 ? '' : `:${config.port}`}/${domains.length ? ` and http://${domains[0]}/` : ''}\nbuild its CSS with: npm run css -- ${id}`);
      return 0;
    }
    default:
      console.error(USAGE);
      return command ? 2 : 0;
  }
}

process.exit(await main());
