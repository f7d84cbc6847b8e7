/**
 * What the engine reports while it runs and undoes a graph. The engine only emits these; the
 * renderers in src/render/ and the drivers decide what to show.
 */
import type { Failure } from './failure.js';
import type { Progress } from './kind.js';

export type EngineEventType =
  | 'queued'
  | 'waiting'
  | 'started'
  | 'output'
  | 'progress'
  | 'ready'
  | 'done'
  | 'skipped'
  | 'failed'
  | 'cancelled'
  | 'undo-started'
  | 'undone'
  | 'undo-failed';

export interface EngineEvent {
  type: EngineEventType;
  task: string;
  /** epoch ms */
  time: number;
  durationMs?: number;
  /** why it was skipped / cancelled */
  reason?: string;
  failure?: Failure;
  line?: string;
  progress?: Progress;
  summary?: string;
  /** for `waiting`/`queued`: the needs not yet settled */
  needs?: string[];
  /** for ready/done: nothing changed, an existing service/install was reused */
  satisfied?: boolean;
  /** for failed: the task is optional, the failure is only a warning */
  optional?: boolean;
  mode?: 'oneshot' | 'service';
}
