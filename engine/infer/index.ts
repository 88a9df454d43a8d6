/** Inference on a sub-tile: priors, bijections, the posterior, optimisers, MAP, Laplace errors, NUTS and its diagnostics. */
export * from './priors.ts';
export * from './transforms.ts';
export * from './posterior.ts';
export * from './lbfgs.ts';
export * from './adam.ts';
export * from './map.ts';
export * from './laplace.ts';
export * from './precondition.ts';
export * from './nuts.ts';
export * from './mcmc-diagnostics.ts';
export * from './vi.ts';
export * from './scales.ts';
