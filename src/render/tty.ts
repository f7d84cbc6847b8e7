/**
 * The terminal view, through listr2 (every listr2 import lives in this file). One listr2 task per
 * graph task; each resolves when the engine says the task settled. Pending tasks show what they
 * wait for, running ones their elapsed time and last output line, downloads a progress bar.
 * Graphs past `SUMMARY_THRESHOLD` tasks get a one-line summary instead: listr2's default
 * renderer slows down with the square of the task count.
 *
 * How a settled task looks:
 *   ✔ name (1.2 s): summary          done or ready
 *   ↓ name: skipped, why             never started (a need failed, an `if:` was false)
 *   ✖ name (1.2 s)                   failed; the reason under it, in full (wrapped, never cut)
 *     › reason
 *   ◼ name: cancelled after 1.2 s (why)   was running when the run stopped (another task failed, Ctrl-C)
 * Only a running task's live output line is cut to the terminal's width (a log line must not push
 * the view around); listr2 wraps everything else.
 */
import cliTruncate from 'cli-truncate';
import { color, figures, Listr, ListrDefaultRendererLogLevels, ListrPromptAdapter, ListrTaskEventType, type ListrTaskWrapper } from 'listr2';
import type { EngineEvent } from '../model/event.js';
import { describeFailure } from '../model/failure.js';
import { mask } from '../util/mask.js';
import { unreachable } from '../util/errors.js';
import type { PromptOptions } from '../model/kind.js';
import { formatProgress } from './format.js';
import { formatMs } from '../util/format.js';
import type { RenderTask, Renderer } from './types.js';

const SUMMARY_THRESHOLD = 60;

type Wrapper = ListrTaskWrapper<unknown, any, any>;

interface Slot {
  wrapper?: Wrapper;
  resolve?: () => void;
  reject?: (e: Error) => void;
  startedAt?: number;
  needs: string[];
  state: 'pending' | 'running' | 'over';
  settled?: EngineEvent;
  /** the running task's last output or progress line, as it came (cut to the width when shown) */
  line?: string;
  /** set just before a cancelled task's promise rejects: listr2 then shows it rolled back, not failed */
  cancelled?: boolean;
}

/** Columns a task's output line may use: listr2 indents it two and puts `› ` before it. */
const outputWidth = (): number => Math.max(10, (process.stdout.columns || 80) - 6);
const fit = (line: string): string => cliTruncate(line, outputWidth(), { position: 'end' });

export function createTtyRenderer(tasks: RenderTask[]): Renderer {
  return tasks.length > SUMMARY_THRESHOLD ? summaryRenderer(tasks) : perTaskRenderer(tasks);
}

function perTaskRenderer(tasks: RenderTask[]): Renderer {
  const slots = new Map<string, Slot>(tasks.map((t) => [t.name, { needs: t.needs, state: 'pending' }]));
  const settledNeeds = new Set<string>();
  const waitingTitle = (name: string): string => {
    const left = slots.get(name)!.needs.filter((n) => !settledNeeds.has(n));
    return left.length ? `${name} (waiting for ${left.join(', ')})` : name;
  };
  /** What a pending or running task's title says now (the ticker and every settle refresh it). */
  const liveTitle = (name: string, slot: Slot): string =>
    slot.state === 'running' && slot.startedAt ? `${name} (${formatMs(Date.now() - slot.startedAt)})` : waitingTitle(name);
  const listr = new Listr(
    tasks.map((t) => {
      const slot = slots.get(t.name)!;
      return {
        title: waitingTitle(t.name),
        task: (_ctx: unknown, wrapper: Wrapper) =>
          new Promise<void>((resolve, reject) => {
            slot.wrapper = wrapper;
            slot.resolve = resolve;
            slot.reject = reject;
            // Events may have come before listr2 got here (its renderer loads first): catch up.
            if (slot.settled) return apply(slot.settled);
            wrapper.title = liveTitle(t.name, slot);
            if (slot.line !== undefined) wrapper.output = fit(slot.line);
          }),
        // listr2 reads `rollback` when the task's promise rejects: only a cancelled task has one,
        // so it ends "rolled back" (its own icon) while a failed task ends failed. The engine's
        // undo is the real rollback; this one only names the state. listr2 tests `task.rollback`
        // for truthiness, so undefined here is the same as no rollback (the cast is for
        // exactOptionalPropertyTypes, which types the field as present-or-absent).
        get rollback() {
          return (slot.cancelled ? async (): Promise<void> => {} : undefined) as () => Promise<void>;
        },
        rendererOptions: { persistentOutput: false },
      };
    }),
    {
      concurrent: true,
      exitOnError: false,
      exitAfterRollback: false,
      collectErrors: false,
      registerSignalListeners: false,
      renderer: 'default',
      rendererOptions: {
        collapseErrors: false,
        showErrorMessage: true,
        formatOutput: 'wrap',
        removeEmptyLines: true,
        icon: { [ListrDefaultRendererLogLevels.ROLLED_BACK]: figures.squareSmallFilled },
        color: { [ListrDefaultRendererLogLevels.ROLLED_BACK]: (s?: string): string => color.yellow(s ?? '') },
      },
      silentRendererCondition: false,
    },
  );
  const done = listr.run().catch(() => {});
  let columns = process.stdout.columns;
  const ticker = setInterval(() => {
    const resized = process.stdout.columns !== columns;
    columns = process.stdout.columns;
    for (const [name, slot] of slots) {
      if (slot.state !== 'running' || !slot.wrapper) continue;
      slot.wrapper.title = liveTitle(name, slot);
      if (resized && slot.line !== undefined) slot.wrapper.output = fit(slot.line);
    }
  }, 250);
  ticker.unref();

  function apply(ev: EngineEvent): void {
    const slot = slots.get(ev.task);
    if (!slot) return;
    const w = slot.wrapper;
    if (!w) {
      if (['ready', 'done', 'skipped', 'failed', 'cancelled'].includes(ev.type)) slot.settled = ev;
      if (ev.type === 'started') {
        slot.state = 'running';
        slot.startedAt = ev.time;
      }
      if (ev.type === 'output') slot.line = mask(ev.line);
      if (ev.type === 'progress') slot.line = formatProgress(ev.progress);
      return;
    }
    if (slot.state === 'over') return; // late output after the task settled is ignored
    switch (ev.type) {
      case 'started':
        slot.state = 'running';
        slot.startedAt = ev.time;
        w.title = liveTitle(ev.task, slot);
        return;
      case 'output':
        slot.line = mask(ev.line);
        w.output = fit(slot.line);
        return;
      case 'progress':
        slot.line = formatProgress(ev.progress);
        w.output = fit(slot.line);
        return;
      case 'ready':
      case 'done':
        slot.state = 'over';
        w.title = `${ev.task}${ev.satisfied ? ` (already ${ev.type === 'ready' ? 'running' : 'done'})` : ` (${formatMs(ev.durationMs)})`}${ev.summary ? `: ${ev.summary}` : ''}`;
        slot.resolve?.();
        return;
      case 'skipped':
        slot.state = 'over';
        w.skip(`${ev.task}: skipped, ${ev.why}`);
        slot.resolve?.();
        return;
      case 'failed':
        slot.state = 'over';
        if (ev.optional) {
          w.skip(`${ev.task}: warning: ${mask(describeFailure(ev.failure).message)}`);
          slot.resolve?.();
        } else {
          w.title = `${ev.task} (${formatMs(ev.durationMs)})`;
          slot.reject?.(new Error(mask(describeFailure(ev.failure).message)));
        }
        return;
      case 'cancelled':
        slot.state = 'over';
        slot.cancelled = true;
        w.title = `${ev.task}: cancelled after ${formatMs(ev.durationMs)} (${ev.why})`;
        slot.reject?.(new Error(`cancelled (${ev.why})`));
        return;
      case 'queued':
      case 'undo-started':
      case 'undone':
      case 'undo-failed':
        return; // the plain renderer reports undo; queued tasks are listed from the start
      default:
        return unreachable(ev, 'engine event');
    }
  }

  return {
    event(ev) {
      if (['ready', 'done', 'skipped', 'failed', 'cancelled'].includes(ev.type)) {
        settledNeeds.add(ev.task);
        for (const [name, slot] of slots) if (slot.state === 'pending' && slot.wrapper && !slot.settled) slot.wrapper.title = waitingTitle(name);
      }
      apply(ev);
    },
    async prompt(task, options) {
      const w = slots.get(task)?.wrapper;
      if (!w) return askDirect(options);
      return w.prompt(PasswordAdapter).run(options) as Promise<string>;
    },
    async end() {
      clearInterval(ticker);
      await done;
    },
  };
}

function summaryRenderer(tasks: RenderTask[]): Renderer {
  const total = tasks.length;
  const counts = { done: 0, skipped: 0, failed: 0, cancelled: 0 };
  const running = new Set<string>();
  let wrapper: Wrapper | undefined;
  let finish!: () => void;
  const over = new Promise<void>((r) => (finish = r));
  const tally = (): string => `${counts.done} done, ${counts.skipped} skipped, ${counts.failed} failed${counts.cancelled ? `, ${counts.cancelled} cancelled` : ''}`;
  const listr = new Listr([{ title: `${total} tasks`, task: (_c: unknown, w: Wrapper) => ((wrapper = w), over) }], {
    registerSignalListeners: false,
    renderer: 'default',
    rendererOptions: { showErrorMessage: true },
  });
  const done = listr.run().catch(() => {});
  const ticker = setInterval(() => {
    if (!wrapper) return;
    const settled = counts.done + counts.skipped + counts.failed + counts.cancelled;
    wrapper.title = `${settled}/${total} tasks settled (${tally()})`;
    wrapper.output = running.size ? `running: ${[...running].slice(0, 5).join(', ')}${running.size > 5 ? ` and ${running.size - 5} more` : ''}` : '';
  }, 100);
  ticker.unref();
  return {
    event(ev) {
      if (ev.type === 'started') running.add(ev.task);
      else if (ev.type === 'ready' || ev.type === 'done') (running.delete(ev.task), counts.done++);
      else if (ev.type === 'skipped') (running.delete(ev.task), counts.skipped++);
      else if (ev.type === 'failed') (running.delete(ev.task), counts.failed++);
      else if (ev.type === 'cancelled') (running.delete(ev.task), counts.cancelled++);
    },
    async prompt(_task, options) {
      if (!wrapper) return askDirect(options);
      return wrapper.prompt(PasswordAdapter).run(options) as Promise<string>;
    },
    async end() {
      clearInterval(ticker);
      if (wrapper) wrapper.title = `${total} tasks: ${tally()}`;
      finish();
      await done;
    },
  };
}

/** A masked prompt shown inside listr2's display (it pauses the task's spinner line). */
class PasswordAdapter extends ListrPromptAdapter {
  async run<T = string>(options: PromptOptions): Promise<T> {
    const { default: password } = await import('@inquirer/password');
    this.reportStarted();
    try {
      const answer = await password(
        { message: options.message, ...(options.mask === false ? {} : { mask: '*' }) },
        { output: this.wrapper.stdout(ListrTaskEventType.PROMPT) as unknown as NodeJS.WritableStream, input: process.stdin } as never,
      );
      this.reportCompleted();
      return answer as T;
    } catch (err) {
      this.reportFailed();
      throw err;
    }
  }
}

/** A masked prompt straight on the terminal (no progress display active). */
export async function askDirect(options: PromptOptions): Promise<string> {
  const { default: password } = await import('@inquirer/password');
  return password({ message: options.message, ...(options.mask === false ? {} : { mask: '*' }) }, { output: process.stderr } as never);
}
