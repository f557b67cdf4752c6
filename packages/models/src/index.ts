/** @score-sde/models */
export {};
