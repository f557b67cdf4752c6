module.exports = require('../../jest.preset.cjs')('sde-math');
