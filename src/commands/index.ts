import type { Command } from 'commander';
import type { App } from '../model/app.js';
import { register as registerConfig } from './config.js';
import { register as registerInit } from './init.js';
import { register as registerLocal } from './local.js';
import { register as registerEngine } from './engine.js';
import { register as registerAgent } from './agent.js';
import { register as registerInternal } from './internal.js';
import { register as registerLlm } from './llm.js';

/**
 * Every command module exports `register(program, app)`. Keep their top-level imports light
 * (types only); load the work inside the action.
 */
export function registerCommands(program: Command, app: App): void {
  void program;
  void app;
  registerEngine(program, app);
  registerConfig(program, app);
  registerInit(program, app);
  registerLocal(program, app);
  registerAgent(program, app);
  registerInternal(program, app);
  registerLlm(program, app);
}
