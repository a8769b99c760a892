/**
 * For bench/shallowRead.ts: an app with one HTTP function on the shallow read's route that answers a fixed body (a
 * real twin, from `BENCH_FIXED_BODY`) without any I/O. Served by the local host, it measures what the host and the
 * @azure/functions library cost per request on their own. Not part of the app.
 */
import { app } from '@azure/functions';

const body: unknown = JSON.parse(process.env.BENCH_FIXED_BODY ?? '{}');

app.http('fixedTwin', {
  methods: ['GET'],
  route: 'twins/{deviceId}',
  authLevel: 'anonymous',
  handler: async () => ({ jsonBody: body, headers: { 'Content-Type': 'application/json', ETag: '"0"' } }),
});
