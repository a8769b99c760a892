/** The simulator's command line: argument parsing, and a real run stopped by SIGINT/SIGTERM. */
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import path from 'path';
import { parseCommandLine, parseServer } from '../../simulator/main';
import { Lwm2mServerStandIn } from './lwm2mServerStandIn';

const ROOT = path.resolve(__dirname, '../..');

function runCli(args: string[]): {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(
    process.execPath,
    ['-r', path.join(__dirname, 'transpileOnRequire.js'), path.join(ROOT, 'simulator/main.ts'), ...args],
    { cwd: ROOT },
  );
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('simulator command line', () => {
  test('parses the documented options', () => {
    expect(
      parseCommandLine([
        '--count',
        '3',
        '--prefix',
        'sim-',
        '--server',
        '127.0.0.1:5683',
        '--lifetime',
        '60',
        '--pmin',
        '2',
        '--pmax',
        '30',
        '--change-interval',
        '1000',
      ]),
    ).toEqual({
      fleet: {
        count: 3,
        prefix: 'sim-',
        server: { host: '127.0.0.1', port: 5683 },
        lifetime: 60,
        pmin: 2,
        pmax: 30,
        changeIntervalMs: 1000,
      },
      statusIntervalSeconds: 30,
    });
    expect(
      parseCommandLine([
        '--server-instance',
        '1',
        '--send-interval',
        '500',
        '--queue-mode',
        '--awake-window',
        '2000',
        '--sleep-interval',
        '30000',
      ])?.fleet,
    ).toMatchObject({
      serverInstanceId: 1,
      sendIntervalMs: 500,
      queueMode: true,
      awakeWindowMs: 2000,
      sleepIntervalMs: 30_000,
    });
    expect(parseCommandLine(['--help'])).toBeUndefined();
    expect(parseServer('[::1]:5684')).toEqual({ host: '::1', port: 5684 });
    expect(parseServer('localhost')).toEqual({ host: 'localhost', port: 5683 });
    expect(() => parseServer('127.0.0.1:99999')).toThrow('--server must be HOST:PORT');
    expect(() => parseCommandLine(['--count', 'many'])).toThrow('--count must be a number; got "many"');
    expect(() => parseCommandLine(['--colour', 'blue'])).toThrow(/colour/);
  });

  test('--psk-file gives each device its identity and key (hex or base64) and defaults the server to 5684', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sim-psk-'));
    const file = path.join(dir, 'psk.json');
    const key = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    try {
      writeFileSync(
        file,
        JSON.stringify({
          'sim-001': { identity: 'sim-001', key: key.toString('base64') },
          'sim-002': { identity: 'device-two', key: key.toString('hex') },
        }),
        { mode: 0o600 },
      );
      const parsed = parseCommandLine(['--count', '2', '--psk-file', file]);
      expect(parsed?.fleet.server).toEqual({ host: '127.0.0.1', port: 5684 });
      expect(parsed?.fleet.psk).toEqual(
        new Map([
          ['sim-001', { identity: 'sim-001', key }],
          ['sim-002', { identity: 'device-two', key }],
        ]),
      );

      writeFileSync(file, JSON.stringify({ 'sim-001': { identity: 'sim-001', key: 'c2hvcnQ=' } }));
      const error = () => parseCommandLine(['--psk-file', file]);
      expect(error).toThrow(`the PSK file ${file}: sim-001.key must be hex or base64 of 16-64 bytes`);
      writeFileSync(file, '{"sim-001": {"key": "00112233445566778899aabbccddeeff"}}');
      expect(error).toThrow('sim-001.identity must be 1-128 printable ASCII');
      expect(() => parseCommandLine(['--psk-file', path.join(dir, 'missing.json')])).toThrow(
        'cannot read the PSK file',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each(['SIGINT', 'SIGTERM'] as const)(
    'runs devices that register, and de-registers them on %s',
    async (signal) => {
      const server = await Lwm2mServerStandIn.start();
      const cli = runCli([
        '--count',
        '2',
        '--prefix',
        'cli-',
        '--server',
        `127.0.0.1:${server.port}`,
        '--lifetime',
        '60',
      ]);
      try {
        await server.waitFor(() => server.registrations.length === 2, 'two registrations', 40_000);
        expect(server.registrations.map((r) => r.query.ep).sort()).toEqual(['cli-001', 'cli-002']);
        expect(server.registrations[0].query.lt).toBe('60');
        await server.waitFor(() => /registered as \/rd\/r2/.test(cli.output()), 'the registration log line', 5_000);
        cli.child.kill(signal);
        expect(await cli.exited).toBe(0);
        expect(server.deregistrations.sort()).toEqual(['r1', 'r2']);
        expect(cli.output()).toContain(`${signal}: de-registering 2 devices`);
      } finally {
        cli.child.kill('SIGKILL');
        await server.close();
      }
    },
    60_000,
  );

  test('--help prints the options; a bad option exits 2 naming it', async () => {
    const help = runCli(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.output()).toContain('--change-interval MS');
    const bad = runCli(['--count', '0', '--server', '127.0.0.1:5683']);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('count must be an integer from 1 to 10000; got 0');
  }, 60_000);
});
