// The reports lane: observability across the cluster. Node 0 starts the
// trace everywhere, and at the end of a run gathers every node's statistics
// and trace events (src/runtime/observe.ts); in race mode every node's
// interval records and allocations go to node 0's checker (src/race/). What
// this lane sends is not counted as the program's traffic (MeshNetwork).

import { reportTimeoutMs, traceEventsPerMessage } from '../constants.js';
import { DsmError } from '../errors.js';
import type { RaceChecker } from '../race/checker.js';
import type { AllocationRecord, IntervalWrites } from '../race/record.js';
import { otherNodes, type LaneNetwork, type ReportLaneMessage } from './envelope.js';
import { epochUs, type NodeObserver, type NodeStats, type TraceEvent } from './observe.js';

export interface RunReportsOptions {
  nodeId: number;
  nodeCount: number;
  observer: NodeObserver;
  network: LaneNetwork<ReportLaneMessage>;
  /** This node's statistics now. */
  stats(): NodeStats;
  /** Node 0 in race mode: the checker every node's records go to. */
  raceChecker: RaceChecker | null;
}

export interface GatheredReports {
  nodes: NodeStats[];
  events: TraceEvent[];
  dropped: number;
}

export class RunReports {
  private readonly options: RunReportsOptions;
  /** Reports gathered by node 0 at the end of a run. */
  private waiter: { reports: Map<number, { stats: NodeStats; dropped: number }>; events: TraceEvent[]; done: () => void } | null = null;

  constructor(options: RunReportsOptions) {
    this.options = options;
  }

  /**
   * Sends on this lane. A backed-up link ('queued') needs nothing; to a lost
   * node ('lost') nothing is owed: gatherReports names the nodes that did not answer.
   */
  private send(toNode: number, message: ReportLaneMessage): void {
    void this.options.network.send(toNode, message);
  }

  /** Node 0: tells every node to keep trace events from now on. */
  startTrace(): void {
    const originUs = epochUs();
    this.options.observer.startTrace(originUs);
    for (const node of otherNodes(this.options.nodeId, this.options.nodeCount)) this.send(node, { type: 'rtTraceStart', originUs });
  }

  /** Race mode: an interval's writes, to node 0's checker. */
  raceInterval(record: IntervalWrites): void {
    if (this.options.raceChecker !== null) this.options.raceChecker.addInterval(record);
    else this.send(0, { type: 'rtRace', record });
  }

  /** Race mode: an allocation, to node 0's checker. */
  raceAllocation(record: AllocationRecord): void {
    if (this.options.raceChecker !== null) this.options.raceChecker.addAllocation(record);
    else this.send(0, { type: 'rtRaceAlloc', record });
  }

  onMessage(from: number, message: ReportLaneMessage): void {
    const { observer } = this.options;
    switch (message.type) {
      case 'rtTraceStart':
        observer.startTrace(message.originUs);
        return;
      case 'rtReportRequest': {
        if (message.trace) {
          const { events } = observer.takeTrace();
          for (let start = 0; start < events.length; start += traceEventsPerMessage) {
            this.send(from, { type: 'rtReportTrace', events: events.slice(start, start + traceEventsPerMessage) });
          }
        }
        this.send(from, { type: 'rtReport', stats: this.options.stats(), dropped: observer.takeTrace().dropped });
        return;
      }
      case 'rtReportTrace':
        this.waiter?.events.push(...message.events);
        return;
      case 'rtReport':
        if (this.waiter !== null) {
          this.waiter.reports.set(from, { stats: message.stats, dropped: message.dropped });
          if (this.waiter.reports.size === this.options.nodeCount) this.waiter.done();
        }
        return;
      case 'rtRace':
        this.options.raceChecker?.addInterval(message.record);
        return;
      case 'rtRaceAlloc':
        this.options.raceChecker?.addAllocation(message.record);
        return;
    }
  }

  /** Node 0, at the end of a run: every node's stats (and trace events), or an error naming the nodes that did not answer. */
  async gather(trace: boolean): Promise<GatheredReports> {
    const { nodeId, nodeCount, observer } = this.options;
    const own = observer.takeTrace();
    const reports = new Map<number, { stats: NodeStats; dropped: number }>([[nodeId, { stats: this.options.stats(), dropped: own.dropped }]]);
    const events: TraceEvent[] = trace ? own.events : [];
    if (nodeCount > 1) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          const missing = [...Array(nodeCount).keys()].filter((node) => !reports.has(node));
          reject(new DsmError('DSM_ERR_NODE_DIED', `node(s) ${missing.join(', ')} did not send their statistics within ${reportTimeoutMs} ms`));
        }, reportTimeoutMs);
        this.waiter = { reports, events, done: () => { clearTimeout(timer); resolve(); } };
        for (const node of otherNodes(nodeId, nodeCount)) this.send(node, { type: 'rtReportRequest', trace });
      });
      this.waiter = null;
    }
    const nodes = [...reports.keys()].sort((a, b) => a - b).map((node) => reports.get(node)!.stats);
    const dropped = [...reports.values()].reduce((sum, report) => sum + report.dropped, 0);
    return { nodes, events, dropped };
  }
}
