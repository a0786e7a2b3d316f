"""Network output -> displayable frames: conversion, scaling, labels."""
