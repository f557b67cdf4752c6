module.exports = require('../../jest.preset.cjs')('models');
