/**
 * @score-sde/solvers — samplers as compositions of small pure steps: predictors, correctors, ODE solvers,
 * likelihoods, latents and controllable generation, checked against exact answers.
 * @module solvers
 */
export * from './state';
export * from './grid';
export * from './step';
export * from './predictors';
export * from './correctors';
export * from './runge-kutta';
export * from './controller';
export * from './adaptive';
export * from './ode';
export * from './fast';
export * from './adaptive-sde';
export * from './runner';
export * from './likelihood';
export * from './latent';
export * from './guidance';
export * from './inpainting';
export * from './spec';
export * from './conditional';
