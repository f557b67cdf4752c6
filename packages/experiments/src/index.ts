/** @score-sde/experiments */
export {};
