module.exports = require('../../jest.preset.cjs')('solvers');
