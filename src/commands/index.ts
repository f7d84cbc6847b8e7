import type { Command } from 'commander';
import type { App } from '../app.js';
import { register as registerConfig } from './config.js';
import { register as registerInit } from './init.js';

/**
 * Every command module exports `register(program, app)`. Keep their top-level imports light
 * (types only); load the work inside the action.
 */
export function registerCommands(program: Command, app: App): void {
  void program;
  void app;
  registerConfig(program, app);
  registerInit(program, app);
}
