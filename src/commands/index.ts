import type { Command } from 'commander';
import type { App } from '../model/app.js';
import { registerActionSecrets } from './action-secrets.js';
import { register as registerConfig } from './config.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerInit } from './init.js';
import { register as registerLocal } from './local.js';
import { register as registerEngine } from './engine.js';
import { register as registerAgent } from './agent.js';
import { register as registerInternal } from './internal.js';
import { register as registerLlm } from './llm.js';

/** Shown after the command list of `stigmer --help`: one example a command, the product first. */
const EXAMPLES = `
Examples:
  stigmer init                          set up ~/.stigmer (config, Temporal CLI)
  stigmer local start                   start Temporal, stigmer-server and the agent-runner
  stigmer local status                  the Stigmer stack: components, Temporal, LLM, secrets
  stigmer agent run helper -m "hi"      run an agent and stream its answer
  stigmer llm pull qwen2.5-coder:7b     pull an Ollama model
  stigmer doctor                        find what is wrong with the setup
  stigmer config set backend.local.llm.provider anthropic
  stigmer up -f my.tasks.yaml           run any task graph
  stigmer status                        the tasks of a stack: state, pid, uptime, last probe
  stigmer down                          undo everything the state recorded, in reverse order
  stigmer graph --format mermaid        the plan and its critical path
  stigmer validate -f my.tasks.yaml     check a tasks file without running it

stigmer status vs stigmer local status: \`status\` is the engine's view of a stack's tasks (any
tasks file; for the local stack, every task with its pid and probe); \`local status\` describes the
Stigmer stack as components (Temporal health, the LLM and its model, which keys are set).`;

/**
 * Every command module exports `register(program, app)`. Keep their top-level imports light
 * (types only); load the work inside the action. Help lists the product first, then the engine.
 */
export function registerCommands(program: Command, app: App): void {
  program.hook('preAction', (_program, action) => registerActionSecrets(action.opts() as { dataDir?: unknown; file?: unknown }));
  program.commandsGroup('Stigmer:');
  registerInit(program, app);
  registerLocal(program, app);
  registerAgent(program, app);
  registerLlm(program, app);
  registerDoctor(program, app);
  registerConfig(program, app);
  program.commandsGroup('Task-graph engine (any stigmer.tasks.yaml):');
  registerEngine(program, app);
  registerInternal(program, app);
  program.commandsGroup('');
  program.addHelpText('after', EXAMPLES);
}
