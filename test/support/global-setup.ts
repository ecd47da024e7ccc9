import { killRecordedPeers } from './peers/peer-process.js';

// Peers are started by the suites that need them through test/support/peers;
// the teardown kills whatever a crashed suite left behind, by recorded pid.
export default function setup(): () => void {
  killRecordedPeers();
  return () => {
    const leftovers = killRecordedPeers();
    if (leftovers.length) console.warn(`[switchyard tests] killed leftover peers: ${leftovers.join(', ')}`);
  };
}
