/**
 * What the engine reports while it runs and undoes a graph: a union on `type`, each variant with
 * exactly its fields. The engine only emits these; the renderers in src/render/ and the drivers
 * decide what to show.
 */
import type { Failure } from './failure.js';
import type { Progress, TaskKind } from './kind.js';

interface At {
  task: string;
  /** epoch ms */
  time: number;
}

/** The run took the task in; `needs` are what it waits for. */
export interface QueuedEvent extends At {
  type: 'queued';
  needs: string[];
}

/** Its kind's `run` began. */
export interface StartedEvent extends At {
  type: 'started';
  mode: TaskKind['mode'];
}

/** A line the task printed (secrets masked). */
export interface OutputEvent extends At {
  type: 'output';
  line: string;
}

/** Progress of a long step, e.g. a download. */
export interface ProgressEvent extends At {
  type: 'progress';
  progress: Progress;
}

/** A service is ready (`ready`) or a one-shot finished (`done`). */
export interface FinishedEvent extends At {
  type: 'ready' | 'done';
  durationMs: number;
  /** nothing changed: an existing service or install was reused */
  satisfied: boolean;
  summary?: string;
  mode: TaskKind['mode'];
}

/** Not run; `why` is free text ("if: ... is false", "needs x, which failed"). */
export interface SkippedEvent extends At {
  type: 'skipped';
  why: string;
}

/** The task failed; an optional task's failure is only a warning. */
export interface FailedEvent extends At {
  type: 'failed';
  failure: Failure;
  durationMs: number;
  optional: boolean;
  mode: TaskKind['mode'];
}

/** Aborted while running (interrupt, or another task failed); `why` is free text. */
export interface CancelledEvent extends At {
  type: 'cancelled';
  why: string;
  durationMs: number;
}

/** Undoing what the task did began. */
export interface UndoStartedEvent extends At {
  type: 'undo-started';
}

/** Its undo steps ran. */
export interface UndoneEvent extends At {
  type: 'undone';
  durationMs: number;
}

/** An undo step failed; the task stays recorded for the next `down`. */
export interface UndoFailedEvent extends At {
  type: 'undo-failed';
  failure: Failure;
}

export type EngineEvent =
  | QueuedEvent
  | StartedEvent
  | OutputEvent
  | ProgressEvent
  | FinishedEvent
  | SkippedEvent
  | FailedEvent
  | CancelledEvent
  | UndoStartedEvent
  | UndoneEvent
  | UndoFailedEvent;

export type EngineEventType = EngineEvent['type'];

/** An event as the scheduler's parts write it (the scheduler stamps the time). */
export type EventInput = EngineEvent extends infer E ? (E extends EngineEvent ? Omit<E, 'time'> : never) : never;
