import type { EngineEvent } from '../model/event.js';
import type { PromptOptions } from '../model/kind.js';

export interface RenderTask {
  name: string;
  needs: string[];
}

/** A view of a run. The engine only emits events; a renderer turns them into output. */
export interface Renderer {
  event(ev: EngineEvent): void;
  /** ask the user something without fighting the progress display */
  prompt?(task: string, options: PromptOptions): Promise<string>;
  /** the main run is over (undo events may still follow) */
  end(): Promise<void>;
}

export type OutputMode = 'auto' | 'plain' | 'json' | 'tty';
