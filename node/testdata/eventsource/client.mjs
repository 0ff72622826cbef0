// Follows one Server-Sent Events stream with the npm eventsource package (as a Node.js
// program or a bundled web app would) and prints what it sees, one line each:
//
//   open | ready ID DATA | message ID DATA | reset ID DATA | error MESSAGE | closed
//
// It runs until its standard input ends. Usage: node client.mjs URL
import { EventSource } from 'eventsource';

const url = process.argv[2];
const say = (...parts) => process.stdout.write(parts.join(' ') + '\n');
const es = new EventSource(url);
es.onopen = () => say('open');
es.onerror = (e) => {
  say('error', JSON.stringify(e.message ?? ''));
  if (es.readyState === EventSource.CLOSED) say('closed');
};
es.onmessage = (e) => say('message', e.lastEventId, e.data);
es.addEventListener('ready', (e) => say('ready', e.lastEventId, e.data));
es.addEventListener('reset', (e) => say('reset', e.lastEventId, e.data));
process.stdin.on('end', () => {
  es.close();
  process.exit(0);
});
process.stdin.resume();
