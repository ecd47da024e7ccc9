/** Passive outlier detection settings, durations in ms. */
export interface OutlierSettings {
  enabled: boolean;
  /** Consecutive transport failures that eject an endpoint. */
  consecutiveFailures: number;
  /** First ejection's length; the n-th consecutive ejection lasts n times as long. */
  baseEjectionMs: number;
  /** Longest ejection. */
  maxEjectionMs: number;
  /** At most this share (percent) of a service's endpoints is ejected at once. */
  maxEjectionPercent: number;
}

/** What a call says about its endpoint (see `endpointVerdict` in core/call-outcome). */
export type EndpointVerdict = 'failure' | 'answered' | 'unknown';

interface EndpointRecord {
  failures: number;
  /** Ejections counted towards the next one's length (decays while healthy). */
  ejections: number;
  ejectedUntil: number;
  returnedAt: number;
  timer: NodeJS.Timeout | undefined;
}

/** What the detector reports. */
export interface OutlierListener {
  /** May this endpoint be ejected now? (the max-ejection share) */
  mayEject(key: string): boolean;
  ejected(key: string, info: { consecutiveFailures: number; durationMs: number; ejections: number }): void;
  returned(key: string): void;
}

/**
 * Passive outlier detection over real calls (Envoy's consecutive gateway
 * failures): `consecutiveFailures` transport failures in a row eject an
 * endpoint for `baseEjectionMs × n` (n = its consecutive ejections, capped
 * at `maxEjectionMs`); each base period spent back in service forgives one
 * ejection. Any answer from the endpoint resets its failure count.
 *
 * @example
 * const detector = new OutlierDetector(settings, listener); detector.record(endpoint.key, endpointVerdict(outcome));
 */
export class OutlierDetector {
  private readonly records = new Map<string, EndpointRecord>();
  private ejectedCount = 0;

  constructor(
    readonly settings: OutlierSettings,
    private readonly listener: OutlierListener,
    private readonly now: () => number = Date.now,
  ) {}

  /** Endpoints ejected right now. */
  get ejected(): number {
    return this.ejectedCount;
  }

  /** When an ejected endpoint returns, and how many ejections in a row it is serving. */
  ejection(key: string): { until: number; ejections: number } | undefined {
    const record = this.records.get(key);
    return record?.timer !== undefined ? { until: record.ejectedUntil, ejections: record.ejections } : undefined;
  }

  isEjected(key: string): boolean {
    const record = this.records.get(key);
    return record !== undefined && record.timer !== undefined;
  }

  /** Feeds one call's outcome; returns true when it ejected the endpoint. */
  record(key: string, verdict: EndpointVerdict): boolean {
    if (!this.settings.enabled || verdict === 'unknown') return false;
    let record = this.records.get(key);
    if (verdict === 'answered') {
      if (record) record.failures = 0;
      return false;
    }
    if (!record) {
      record = { failures: 0, ejections: 0, ejectedUntil: 0, returnedAt: 0, timer: undefined };
      this.records.set(key, record);
    }
    record.failures++;
    if (record.timer !== undefined || record.failures < this.settings.consecutiveFailures) return false;
    if (!this.listener.mayEject(key)) return false;
    const now = this.now();
    if (record.returnedAt > 0) {
      const forgiven = Math.floor((now - record.returnedAt) / this.settings.baseEjectionMs);
      record.ejections = Math.max(0, record.ejections - forgiven);
    }
    record.ejections++;
    const durationMs = Math.min(this.settings.maxEjectionMs, this.settings.baseEjectionMs * record.ejections);
    const consecutiveFailures = record.failures;
    record.ejectedUntil = now + durationMs;
    record.failures = 0;
    const ejected = record;
    record.timer = setTimeout(() => this.unEject(key, ejected), durationMs);
    record.timer.unref?.();
    this.ejectedCount++;
    this.listener.ejected(key, { consecutiveFailures, durationMs, ejections: record.ejections });
    return true;
  }

  /** Forgets endpoints that left the registry (an ejected one is no longer counted). */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, record] of this.records) {
      if (keys.has(key)) continue;
      if (record.timer !== undefined) {
        clearTimeout(record.timer);
        this.ejectedCount--;
      }
      this.records.delete(key);
    }
  }

  /** Forgets one endpoint that left the registry (as `retain` does for all that left, in O(1)). */
  forget(key: string): void {
    const record = this.records.get(key);
    if (record === undefined) return;
    if (record.timer !== undefined) {
      clearTimeout(record.timer);
      this.ejectedCount--;
    }
    this.records.delete(key);
  }

  /** Stops every ejection timer. */
  close(): void {
    for (const record of this.records.values()) clearTimeout(record.timer);
    this.records.clear();
    this.ejectedCount = 0;
  }

  private unEject(key: string, record: EndpointRecord): void {
    if (this.records.get(key) !== record || record.timer === undefined) return;
    record.timer = undefined;
    record.returnedAt = this.now();
    record.failures = 0;
    this.ejectedCount--;
    this.listener.returned(key);
  }
}
