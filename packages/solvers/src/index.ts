/** @score-sde/solvers */
export {};
