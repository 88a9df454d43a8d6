/** Runtime-agnostic orchestration: run plans, SLURM scripts and AWS Batch JSON (docs/run.md). */
export * from './plan.ts';
export * from './shell.ts';
export * from './slurm.ts';
export * from './awsbatch.ts';
export * from './slurm-state.ts';
