import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENTS_TOPIC, JOBS_QUEUE } from '../../../shared/constants';
import defaultEntities from '../../../local/serviceBus/entities.json';
import { loadEntitiesConfig, resolveEntitiesConfig } from '../../../local/serviceBus/entitiesConfig';

test('the default entities are the project queue and topic, as the design sets them', () => {
  const settings = resolveEntitiesConfig(defaultEntities);
  expect(settings.queues).toEqual([
    {
      name: JOBS_QUEUE,
      requiresSession: true,
      maxDeliveryCount: 10,
      lockDurationMs: 60_000,
      duplicateDetectionWindowMs: 600_000,
      deadLetteringOnMessageExpiration: true,
      defaultMessageTimeToLiveMs: Infinity,
    },
  ]);
  expect(settings.topics.map((topic) => topic.name)).toEqual([EVENTS_TOPIC]);
  expect(settings.topics[0].subscriptions.map((subscription) => subscription.name)).toContain('automation');
  expect(settings.topics[0].subscriptions.every((subscription) => !subscription.requiresSession)).toBe(true);
});

test('left-out properties take the Azure defaults', () => {
  const settings = resolveEntitiesConfig({
    queues: [{ name: 'plain' }],
    topics: [{ name: 't', subscriptions: [{ name: 's' }] }],
  });
  expect(settings.queues[0]).toEqual({
    name: 'plain',
    requiresSession: false,
    maxDeliveryCount: 10,
    lockDurationMs: 60_000,
    duplicateDetectionWindowMs: undefined,
    deadLetteringOnMessageExpiration: false,
    defaultMessageTimeToLiveMs: Infinity,
  });
  expect(settings.topics[0]).toMatchObject({ name: 't', duplicateDetectionWindowMs: undefined });
  expect(settings.topics[0].subscriptions[0]).toMatchObject({
    name: 's',
    lockDurationMs: 60_000,
    maxDeliveryCount: 10,
  });
});

test('a topic time to live bounds its subscriptions', () => {
  const settings = resolveEntitiesConfig({
    topics: [
      {
        name: 't',
        properties: { defaultMessageTimeToLive: 'PT1H' },
        subscriptions: [{ name: 'short', properties: { defaultMessageTimeToLive: 'PT1M' } }, { name: 'default' }],
      },
    ],
  });
  expect(settings.topics[0].subscriptions.map((subscription) => subscription.defaultMessageTimeToLiveMs)).toEqual([
    60_000, 3_600_000,
  ]);
});

test.each([
  [
    { queues: [{ name: 'q', properties: { lockDurration: 'PT1M' } }] },
    'queues[0].properties.lockDurration is not supported',
  ],
  [
    { queues: [{ name: 'q', properties: { lockDuration: '60s' } }] },
    "queues[0].properties.lockDuration '60s' is not an ISO-8601 duration",
  ],
  [
    { queues: [{ name: 'q', properties: { lockDuration: 'PT0S' } }] },
    'queues[0].properties.lockDuration must be longer than zero',
  ],
  [
    { queues: [{ name: 'q', properties: { maxDeliveryCount: 0 } }] },
    'queues[0].properties.maxDeliveryCount must be an integer >= 1',
  ],
  [
    { queues: [{ name: 'q', properties: { requiresSession: 'yes' } }] },
    'queues[0].properties.requiresSession must be true or false',
  ],
  [{ queues: [{ name: 'q' }, { name: 'Q' }] }, "queues[1].name 'Q' is declared twice"],
  [{ queues: [{ name: 'x' }], topics: [{ name: 'x' }] }, "topics[0].name 'x' is declared twice"],
  [{ queues: [{ properties: {} }] }, 'queues[0].name must be an entity name'],
  [
    { topics: [{ name: 't', subscriptions: [{ name: 'a b' }] }] },
    'topics[0].subscriptions[0].name must be an entity name',
  ],
  [
    { topics: [{ name: 't', properties: { maxDeliveryCount: 3 } }] },
    'topics[0].properties.maxDeliveryCount is not supported',
  ],
  [{ queue: [] }, 'queue is not supported'],
  [[], 'the root must be an object'],
])('%j is refused: %s', (config, message) => {
  expect(() => resolveEntitiesConfig(config, 'test.json')).toThrow(`test.json: ${message}`);
});

test('loadEntitiesConfig names the file it cannot read or parse', () => {
  const directory = mkdtempSync(join(tmpdir(), 'entities-'));
  try {
    const broken = join(directory, 'broken.json');
    writeFileSync(broken, '{ "queues": [');
    expect(() => loadEntitiesConfig(broken)).toThrow(`cannot read entities file ${broken}`);
    expect(() => loadEntitiesConfig(join(directory, 'missing.json'))).toThrow('missing.json');
    const valid = join(directory, 'valid.json');
    writeFileSync(valid, JSON.stringify({ queues: [{ name: 'from-file' }] }));
    expect(loadEntitiesConfig(valid).queues[0].name).toBe('from-file');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
